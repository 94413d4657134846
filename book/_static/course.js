// Figures in cell outputs open at their own size on a click (a link to the image file).
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("div.cell_output img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.getAttribute("src");
    link.title = "open the figure at full size";
    img.replaceWith(link);
    link.appendChild(img);
  }
});
