// The portal's only script. Pages carry no inline script (the Content-Security-Policy forbids
// it); they mark what needs a little behaviour with data attributes instead.

// <form data-confirm="Remove …?">: ask before submitting.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// <a data-back href="/">: go back a page when there is one, else follow the link.
document.addEventListener("click", (event) => {
  const link = event.target.closest ? event.target.closest("a[data-back]") : null;
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});
