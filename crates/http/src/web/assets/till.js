// The till's live quote: while the cashier builds the basket, ask the server what the
// member would earn and pay, and show the breakdown. Without this script the
// "Quote" button does the same with a page load.
(function () {
  "use strict";
  var form = document.getElementById("sale");
  var out = document.getElementById("quote");
  if (!form || !out) { return; }
  var timer = null;
  var seq = 0;
  function refresh() {
    var mine = ++seq;
    var body = new URLSearchParams(new FormData(form));
    fetch("/till/quote", {
      method: "POST",
      headers: { "x-csrf-token": form.elements["csrf"].value, "x-partial": "1" },
      body: body,
      credentials: "same-origin"
    }).then(function (res) { return res.text(); })
      .then(function (html) { if (mine === seq) { out.innerHTML = html; } })
      .catch(function () { /* the Quote button still works */ });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();
