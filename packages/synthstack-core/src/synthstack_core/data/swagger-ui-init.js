// Starts Swagger UI on the contract; the schema URL comes from this script tag's data-schema-url
// (no inline script: the page's Content-Security-Policy allows scripts from this server only).
// validatorUrl null: Swagger UI would otherwise show a badge fetched from validator.swagger.io.
(function () {
  "use strict";
  var schemaUrl = document.currentScript.dataset.schemaUrl;
  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: schemaUrl,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl],
      layout: "StandaloneLayout",
    });
  });
})();
