// Progressive enhancement only: every page works without this file.
// Abstracts in lists are collapsed to a few lines, with a button to expand them.
(function () {
  "use strict";
  function setUp(abstract, index) {
    abstract.classList.add("collapsed");
    if (abstract.scrollHeight <= abstract.clientHeight + 2) {
      abstract.classList.remove("collapsed");
      return;
    }
    if (!abstract.id) abstract.id = "abstract-" + index;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "expand";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", abstract.id);
    button.textContent = "Show full abstract";
    button.addEventListener("click", function () {
      var expanded = abstract.classList.toggle("collapsed") === false;
      button.setAttribute("aria-expanded", expanded ? "true" : "false");
      button.textContent = expanded ? "Show less" : "Show full abstract";
    });
    abstract.insertAdjacentElement("afterend", button);
  }
  function init() {
    document.querySelectorAll("ol.papers .abstract").forEach(setUp);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
