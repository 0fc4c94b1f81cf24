// viu pages work without JavaScript; this only adds a confirmation before
// irreversible forms (data-confirm) and a print button.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  if (event.target.classList && event.target.classList.contains("print")) {
    window.print();
  }
});
