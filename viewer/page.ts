/** The viewer's single page. Styles inline (allowed by its CSP); the script is /bundle.js. */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>evovla viewer</title>
<style>
  :root { color-scheme: dark; --bg: #16181c; --panel: #1f2228; --fg: #e6e6e6; --dim: #9aa0a6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.35 system-ui, sans-serif; background: var(--bg); color: var(--fg);
         display: grid; grid-template-rows: auto 1fr auto; height: 100vh; }
  header { display: flex; gap: 10px; align-items: center; padding: 6px 10px; background: var(--panel); flex-wrap: wrap; }
  header .title { font-weight: 600; }
  header select, header button { background: #2b2f36; color: var(--fg); border: 1px solid #3a3f47; border-radius: 4px; padding: 2px 6px; }
  #status { color: var(--dim); margin-left: auto; }
  main { display: grid; grid-template-columns: 1fr auto; min-height: 0; }
  #view3d { position: relative; min-height: 0; }
  #view3d canvas { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
  #instruction { position: absolute; left: 8px; top: 6px; color: var(--dim); pointer-events: none; }
  #cams { display: flex; flex-direction: column; gap: 8px; padding: 8px; background: var(--panel); overflow: auto; }
  #cams figure { margin: 0; }
  #cams canvas { width: 192px; image-rendering: pixelated; background: #000; display: block; }
  #cams figcaption { color: var(--dim); font-size: 12px; }
  footer { padding: 6px 10px 8px; background: var(--panel); display: grid; gap: 4px; }
  #scrub { width: 100%; }
  #timeline { width: 100%; height: 30px; display: block; }
  #plot { width: 100%; height: 150px; display: block; background: #111317; }
  #legend { display: flex; flex-wrap: wrap; gap: 10px; color: var(--dim); font-size: 12px; }
  #legend span::before { content: ''; display: inline-block; width: 10px; height: 10px; margin-right: 4px; background: var(--c); vertical-align: -1px; }
  #stagename, #sarname { color: var(--dim); }
  #run { overflow: auto; padding: 8px 12px; min-height: 0; }
  body[data-view="run"] main, body[data-view="run"] footer { display: none; }
  body:not([data-view="run"]) #run { display: none; }
  #runCharts { display: flex; flex-wrap: wrap; gap: 8px; }
  #runCharts figure { margin: 0; background: var(--panel); padding: 4px; }
  #runCharts figcaption { color: var(--dim); font-weight: 600; }
  #run pre { background: var(--panel); padding: 8px; white-space: pre-wrap; color: var(--fg); }
  #runNotes { color: #f3a712; white-space: pre-wrap; }
</style>
</head>
<body data-state="connecting">
<header>
  <span class="title">evovla</span>
  <button id="runToggle" type="button" hidden>episodes</button>
  <label>episode <select id="episode"></select></label>
  <button id="play" type="button">play</button>
  <label>speed <select id="speed">
    <option value="0.25">0.25x</option><option value="0.5">0.5x</option><option value="1" selected>1x</option>
    <option value="2">2x</option><option value="4">4x</option><option value="8">8x</option>
  </select></label>
  <label>images <select id="channel">
    <option value="rgb" selected>rgb</option><option value="depth">depth</option><option value="segmentation">segmentation</option>
  </select></label>
  <label><input id="showRobot" type="checkbox" checked> robot</label>
  <label id="followWrap" hidden><input id="follow" type="checkbox" checked> follow live</label>
  <span id="stepLabel">step -</span>
  <span id="stagename"></span>
  <span id="sarname"></span>
  <span id="status">connecting...</span>
</header>
<section id="run" hidden>
  <h2 id="runTitle"></h2>
  <div id="runNotes"></div>
  <div id="runCharts"></div>
  <h3>evaluation</h3>
  <pre id="runEval"></pre>
  <h3>config</h3>
  <pre id="runConfig"></pre>
</section>
<main>
  <div id="view3d"><canvas id="scene"></canvas><div id="instruction"></div></div>
  <aside id="cams"></aside>
</main>
<footer>
  <input id="scrub" type="range" min="0" max="0" value="0" step="1">
  <canvas id="timeline"></canvas>
  <canvas id="plot"></canvas>
  <div id="legend"></div>
</footer>
<script type="module" src="/bundle.js"></script>
</body>
</html>
`;
