/// The operator page's style and script, compiled in: nothing is fetched from anywhere else and
/// there is no build step. The script only refreshes the sections in place and copies rules;
/// without it the page shows the numbers of the moment.
enum OperatorAssets {
    static let css = """
        :root { color-scheme: light dark; --muted: #777; --ok: #2a8a3e; --bad: #c0392b; --served: #3b7dd8; --fetched: #999; }
        body { font: 14px/1.45 system-ui, sans-serif; margin: 0; }
        header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 1.2em; padding: .6em 1.2em; border-bottom: 1px solid #8884; }
        header h1 { font-size: 1.3em; margin: 0; }
        nav a { margin-right: .9em; }
        main { padding: 0 1.2em 2em; max-width: 1200px; }
        section { margin-top: 1.6em; }
        h2 { border-bottom: 1px solid #8884; padding-bottom: .2em; }
        h3 { font-size: 1.05em; margin: 1.1em 0 .4em; }
        table { border-collapse: collapse; margin: .3em 0; }
        th, td { text-align: left; padding: .25em .8em .25em 0; vertical-align: top; border-bottom: 1px solid #8882; }
        th { font-weight: 600; }
        code, pre { font: 12.5px ui-monospace, monospace; }
        pre.suggestion { background: #8881; padding: .6em; overflow-x: auto; }
        .muted { color: var(--muted); }
        .ok { color: var(--ok); font-weight: 600; }
        .bad { color: var(--bad); font-weight: 600; }
        .warning { color: var(--bad); margin: .2em 0; }
        .tag { font-size: .85em; border: 1px solid #8886; border-radius: 3px; padding: 0 .35em; }
        .cards { display: flex; flex-wrap: wrap; gap: .8em; }
        .card { border: 1px solid #8884; border-radius: 6px; padding: .5em .8em; min-width: 14em; }
        progress { width: 12em; }
        progress.usage { width: 100%; }
        .charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
        figure { margin: .8em 0; }
        figcaption { color: var(--muted); font-size: .9em; }
        svg { width: 600px; max-width: 90vw; height: 80px; border-bottom: 1px solid #8886; }
        rect.served { fill: var(--served); }
        rect.fetched { fill: var(--fetched); }
        article.rule, article.mismatch { margin-bottom: 1em; }
        button.copy { cursor: pointer; }

        """

    static let script = """
        "use strict";
        (function () {
          var interval = 2000;
          function fallbackCopy(text) {
            var area = document.createElement("textarea");
            area.value = text;
            area.setAttribute("readonly", "");
            area.style.position = "fixed";
            area.style.opacity = "0";
            document.body.appendChild(area);
            area.select();
            var copied = false;
            try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
            document.body.removeChild(area);
            return copied;
          }
          function copy(button) {
            var source = document.getElementById(button.dataset.copy);
            if (!source) { return; }
            var text = source.textContent;
            var done = function () { button.textContent = "Copied"; button.dataset.copied = "true"; };
            if (navigator.clipboard && window.isSecureContext) {
              navigator.clipboard.writeText(text).then(done, function () { if (fallbackCopy(text)) { done(); } });
            } else if (fallbackCopy(text)) {
              done();
            }
          }
          document.addEventListener("click", function (event) {
            var button = event.target.closest("button.copy");
            if (button) { copy(button); }
          });
          function refresh() {
            fetch(window.location.pathname + window.location.search, { credentials: "same-origin", cache: "no-store" })
              .then(function (response) {
                if (!response.ok) { throw new Error("HTTP " + response.status); }
                return response.text();
              })
              .then(function (text) {
                var next = new DOMParser().parseFromString(text, "text/html");
                document.querySelectorAll("main > section").forEach(function (section) {
                  var fresh = next.getElementById(section.id);
                  if (fresh && fresh.innerHTML !== section.innerHTML) { section.innerHTML = fresh.innerHTML; }
                });
                var generated = next.getElementById("generated");
                if (generated) { document.getElementById("generated").textContent = generated.textContent; }
                document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || "0") + 1);
                delete document.body.dataset.stale;
              })
              .catch(function () { document.body.dataset.stale = "true"; })
              .finally(function () { setTimeout(refresh, interval); });
          }
          setTimeout(refresh, interval);
        })();

        """
}
