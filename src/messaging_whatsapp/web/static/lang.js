// The language switcher: the choice is a cookie the server reads (no server state changes).
(function () {
  "use strict";
  document.querySelectorAll(".lang-option").forEach(function (button) {
    button.addEventListener("click", function () {
      var secure = location.protocol === "https:" ? "; Secure" : "";
      document.cookie = "lang=" + encodeURIComponent(button.dataset.lang) + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
      location.reload();
    });
  });
})();
