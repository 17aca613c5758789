// Starts Swagger UI on the contract; the schema URL comes from this script tag's data-schema-url
// (no inline script, so a strict Content-Security-Policy can be used).
(function () {
  "use strict";
  var schemaUrl = document.currentScript.dataset.schemaUrl;
  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: schemaUrl,
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl],
      layout: "StandaloneLayout",
    });
  });
})();
