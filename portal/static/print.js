// Print buttons on the desk's slips and sheets (the CSP allows no inline script).
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) window.print();
});
