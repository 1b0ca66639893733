// Loaded before the page's modules, as a classic script: if a module fails to load or the page never
// finishes starting, say so in the page instead of leaving it blank.
(function () {
  function show(message) {
    var box = document.getElementById("errors");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "error-box";
    item.textContent = message;
    box.appendChild(item);
    box.hidden = false;
    var loading = document.getElementById("loading");
    if (loading) loading.hidden = true;
  }
  // Capture phase: failed <script>/<link> loads do not bubble to window.
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      show("could not load " + (target.src || target.href) + "; the page cannot start");
    }
  }, true);
  window.addEventListener("load", function () {
    setTimeout(function () {
      if (!document.body.dataset.loaded) {
        show("the page's scripts did not start (a script failed to load or this browser lacks ES modules)");
      }
    }, 8000);
  });
})();
