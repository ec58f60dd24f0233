/**
 * The viewer page: connects to the server's socket with the token from the page URL, lists the
 * episodes, and plays one back (or follows a live run): 3D scene, camera images, stage timeline,
 * reward-term plots, play/pause/scrub/speed.
 */
import { viewerPackr, type ClientMessage, type ImageChannel, type EpisodeSummary, type ServerMessage, type ViewImage, type ViewStep } from '../protocol.ts';
import { drawPlot, drawTimeline, stageColor, termColor, termNames } from './charts.ts';
import { imageToRgba } from './images.ts';
import { advancePlayback } from './playback.ts';
import { RunView } from './run_view.ts';
import { SceneView } from './scene_view.ts';

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page lacks #${id}`);
  return e as T;
}

const ui = {
  episode: el<HTMLSelectElement>('episode'),
  play: el<HTMLButtonElement>('play'),
  speed: el<HTMLSelectElement>('speed'),
  channel: el<HTMLSelectElement>('channel'),
  showRobot: el<HTMLInputElement>('showRobot'),
  follow: el<HTMLInputElement>('follow'),
  followWrap: el<HTMLElement>('followWrap'),
  stepLabel: el<HTMLElement>('stepLabel'),
  stageName: el<HTMLElement>('stagename'),
  sarName: el<HTMLElement>('sarname'),
  runToggle: el<HTMLButtonElement>('runToggle'),
  run: el<HTMLElement>('run'),
  status: el<HTMLElement>('status'),
  instruction: el<HTMLElement>('instruction'),
  cams: el<HTMLElement>('cams'),
  scrub: el<HTMLInputElement>('scrub'),
  timeline: el<HTMLCanvasElement>('timeline'),
  plot: el<HTMLCanvasElement>('plot'),
  legend: el<HTMLElement>('legend'),
};

interface EpisodeState {
  summary: EpisodeSummary;
  steps: ViewStep[];
  loaded: boolean;
}

const view = new SceneView(el<HTMLCanvasElement>('scene'));
const episodes: EpisodeState[] = [];
let mode: 'replay' | 'live' = 'replay';
let current = -1;
let cursor = 0;
let playing = false;
let playClock = 0;
let lastFrame = performance.now();
let terms: string[] = [];
let chartsDirty = true;
let imagesInFlight = false;
let shownImagesFor = -1;

function setState(state: string, status: string): void {
  document.body.dataset.state = state;
  ui.status.textContent = status;
}

const token = new URLSearchParams(location.search).get('token') ?? '';
const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}`);
ws.binaryType = 'arraybuffer';
let opened = false;
ws.onopen = () => {
  opened = true;
  setState('connected', 'connected');
};
ws.onclose = (ev) => {
  // The server answers a bad token with 401 during the handshake, which browsers report only as a
  // close before open.
  if (!opened) setState('refused', 'connection refused: the token in the address is wrong or the viewer has stopped');
  else setState('closed', `disconnected (${ev.code})`);
};
ws.onmessage = (ev) => {
  const msg = viewerPackr.unpack(new Uint8Array(ev.data as ArrayBuffer)) as ServerMessage;
  onMessage(msg);
};

function request(msg: ClientMessage): void {
  // msgpackr returns a Node-style Buffer type; in the browser it is a plain Uint8Array.
  if (ws.readyState === WebSocket.OPEN) ws.send(viewerPackr.pack(msg) as unknown as Uint8Array<ArrayBuffer>);
}

function addEpisode(summary: EpisodeSummary): void {
  episodes[summary.id] = { summary, steps: [], loaded: false };
  const opt = document.createElement('option');
  opt.value = String(summary.id);
  opt.textContent = `${summary.name}${summary.partial ? ' (partial)' : summary.damage ? ' (damaged)' : ''}`;
  ui.episode.append(opt);
}

function onMessage(msg: ServerMessage): void {
  switch (msg.t) {
    case 'hello': {
      mode = msg.mode;
      ui.followWrap.hidden = mode !== 'live';
      for (const s of msg.episodes) addEpisode(s);
      if (msg.episodes.length) select(mode === 'live' ? msg.episodes.length - 1 : 0);
      else setState('empty', mode === 'live' ? 'waiting for the run to start an episode' : 'no episodes');
      if (msg.unreadable?.length) showUnreadable(msg.unreadable);
      break;
    }
    case 'episode': {
      addEpisode(msg.episode);
      // A run's first eval episode (replay) is selected like a live run's first episode.
      if (current < 0 || (mode === 'live' && ui.follow.checked)) select(msg.episode.id);
      break;
    }
    case 'steps': {
      const ep = episodes[msg.episode];
      if (!ep) return;
      for (let i = 0; i < msg.steps.length; i++) ep.steps[msg.from + i] = msg.steps[i];
      if (ep.steps.length >= msg.total) ep.loaded = true;
      if (msg.episode === current) {
        chartsDirty = true;
        if (msg.from === 0 && msg.steps.length) view.setScene(ep.summary.scene, msg.steps[0]);
        if (ep.loaded) {
          terms = termNames(ep.steps);
          legend();
          if (mode === 'live' && ui.follow.checked) cursor = Math.max(0, ep.steps.length - 1);
          setState('ready', `${ep.summary.name}: ${ep.steps.length} steps${ep.summary.damage ? ` - ${ep.summary.partial ? 'partial recording' : 'damaged'}: ${ep.summary.damage}` : ''}`);
        }
      }
      break;
    }
    case 'images': {
      imagesInFlight = false;
      if (msg.episode === current) {
        showImages(msg.images);
        shownImagesFor = msg.step;
      }
      break;
    }
    case 'live': {
      const ep = episodes[msg.episode];
      if (!ep) return;
      ep.steps.push(msg.step);
      ep.summary.steps = ep.steps.length;
      if (msg.episode !== current) return;
      if (terms.length === 0 || Object.keys(msg.step.rewardTerms).some((t) => !terms.includes(t))) {
        terms = termNames(ep.steps);
        legend();
      }
      chartsDirty = true;
      if (ui.follow.checked) {
        cursor = ep.steps.length - 1;
        if (msg.images) {
          showImages(msg.images);
          shownImagesFor = cursor;
        }
      }
      if (msg.dropped) ui.status.textContent = `live - ${msg.dropped} frames dropped (slow connection)`;
      else if (document.body.dataset.state !== 'ready') setState('ready', 'live');
      break;
    }
    case 'run': {
      runView ??= new RunView(ui.run);
      ui.run.hidden = false;
      ui.runToggle.hidden = false;
      setView('run');
      runView.show(msg.run);
      break;
    }
    case 'metrics':
      runView?.append(msg.rows);
      break;
    case 'error':
      ui.status.textContent = `server: ${msg.message}`;
      break;
  }
}

/** Files the server could not open, listed under the episode selector with their damage. */
function showUnreadable(list: Array<{ name: string; reason: string }>): void {
  const box = document.createElement('details');
  box.id = 'unreadable';
  const title = document.createElement('summary');
  title.textContent = `${list.length} file(s) could not be shown`;
  box.append(title);
  for (const u of list) {
    const line = document.createElement('div');
    line.textContent = `${u.name}: ${u.reason}`;
    box.append(line);
  }
  ui.episode.insertAdjacentElement('afterend', box);
}

function select(id: number): void {
  const ep = episodes[id];
  if (!ep) return;
  current = id;
  ui.episode.value = String(id);
  cursor = 0;
  playClock = 0;
  shownImagesFor = -1;
  terms = [];
  ui.legend.textContent = '';
  ui.instruction.textContent = `${ep.summary.header.task}: ${ep.summary.header.instruction}`;
  buildCameraPanel(ep.summary.header.cameras);
  chartsDirty = true;
  if (ep.summary.notes.length) ui.status.textContent = ep.summary.notes.join('; ');
  if (!ep.loaded) {
    if (mode === 'live') {
      // A live episode arrives step by step; ask for what the server already has.
      ep.steps = [];
    }
    setState('loading', `loading ${ep.summary.name}...`);
    request({ t: 'load', episode: id });
  } else {
    view.setScene(ep.summary.scene, ep.steps[0]);
    terms = termNames(ep.steps);
    legend();
  }
}

function buildCameraPanel(names: readonly string[]): void {
  ui.cams.textContent = '';
  ui.cams.hidden = names.length === 0;
  for (const name of names) {
    const fig = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.dataset.camera = name;
    const cap = document.createElement('figcaption');
    cap.textContent = name;
    fig.append(canvas, cap);
    ui.cams.append(fig);
  }
}

function showImages(images: Record<string, ViewImage>): void {
  for (const [name, img] of Object.entries(images)) {
    const canvas = ui.cams.querySelector<HTMLCanvasElement>(`canvas[data-camera="${CSS.escape(name)}"]`);
    if (!canvas) continue;
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    if (!ctx) continue;
    const data = ctx.createImageData(img.width, img.height);
    imageToRgba(img, data.data);
    ctx.putImageData(data, 0, 0);
  }
}

function legend(): void {
  ui.legend.textContent = '';
  terms.forEach((t, i) => {
    const s = document.createElement('span');
    s.style.setProperty('--c', termColor(i));
    s.textContent = t;
    ui.legend.append(s);
  });
  const r = document.createElement('span');
  r.style.setProperty('--c', '#ffffff');
  r.textContent = 'reward (scaled sum, dashed)';
  ui.legend.append(r);
}

let runView: RunView | null = null;

/** The run's curves and config, or the episode player (a run's eval episodes play there). */
function setView(v: 'run' | 'episodes'): void {
  document.body.dataset.view = v;
  ui.runToggle.textContent = v === 'run' ? 'eval episodes' : 'run curves';
  chartsDirty = true;
}

ui.runToggle.onclick = () => setView(document.body.dataset.view === 'run' ? 'episodes' : 'run');
ui.episode.onchange = () => select(Number(ui.episode.value));
ui.play.onclick = () => {
  playing = !playing;
  if (playing && current >= 0 && cursor >= episodes[current].steps.length - 1) cursor = 0;
  playClock = cursor;
  if (mode === 'live') ui.follow.checked = false;
};
ui.scrub.oninput = () => {
  cursor = Number(ui.scrub.value);
  playClock = cursor;
  if (mode === 'live') ui.follow.checked = false;
};
ui.showRobot.onchange = () => view.setRobotVisible(ui.showRobot.checked);
ui.channel.onchange = () => {
  request({ t: 'channel', channel: ui.channel.value as ImageChannel });
  // Ask again for the current step in the new channel.
  shownImagesFor = -1;
};
window.addEventListener('resize', () => (chartsDirty = true));
window.addEventListener('keydown', (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  if (e.key === ' ') ui.play.click();
  else if (e.key === 'ArrowRight') cursor++;
  else if (e.key === 'ArrowLeft') cursor--;
  else return;
  playClock = cursor;
  e.preventDefault();
});

let shownCursor = -1;

function frame(now: number): void {
  const elapsed = (now - lastFrame) / 1000;
  lastFrame = now;
  const ep = episodes[current];
  if (ep && ep.steps.length) {
    const last = ep.steps.length - 1;
    if (playing) {
      // Wall-clock playback: a slow frame skips steps, so 4x is 4x at any frame rate.
      const next = advancePlayback({ clock: playClock, playing }, elapsed, ep.summary.header.controlHz, Number(ui.speed.value), last);
      playClock = next.clock;
      playing = next.playing;
      cursor = next.cursor;
    }
    cursor = Math.max(0, Math.min(last, cursor));
    ui.play.textContent = playing ? 'pause' : 'play';
    const step = ep.steps[cursor];
    if (step && cursor !== shownCursor) {
      view.show(step);
      shownCursor = cursor;
      chartsDirty = true;
      const n = ep.summary.header.stages.length;
      ui.stepLabel.textContent = `step ${cursor + 1}/${ep.steps.length}  t=${step.time.toFixed(2)} s`;
      ui.stageName.textContent = step.stage >= n ? 'all stages done' : `stage ${step.stage}: ${ep.summary.header.stages[step.stage]}`;
      ui.stageName.style.color = stageColor(step.stage, n);
      // SAR's belief beside the ground truth, when the episode recorded it (evaluation with SAR).
      if (step.sarStage !== undefined) {
        const denied = (step.sarClaims ?? []).filter((c) => c.hallucinated).map((c) => ep.summary.header.stages[c.stage] ?? String(c.stage));
        ui.sarName.textContent = `SAR: ${step.sarStage >= n ? 'all stages done' : `stage ${step.sarStage}: ${ep.summary.header.stages[step.sarStage]}`}${denied.length ? ` (hallucinated completion: ${denied.join(', ')})` : ''}`;
        ui.sarName.style.color = stageColor(step.sarStage, n);
      } else ui.sarName.textContent = '';
    }
    ui.scrub.max = String(last);
    if (document.activeElement !== ui.scrub) ui.scrub.value = String(cursor);
    if (chartsDirty) {
      const total = mode === 'live' ? ep.steps.length : ep.summary.steps;
      drawTimeline(ui.timeline, ep.steps, ep.summary.header.stages.length, total, cursor);
      drawPlot(ui.plot, ep.steps, terms, total, cursor);
      chartsDirty = false;
    }
    // Images: one request in flight, always for the newest cursor (replay; live pushes them).
    // A reply for an older step marks that step shown, so the next frame asks again.
    if (ep.summary.header.cameras.length && shownImagesFor !== cursor && !imagesInFlight && !(mode === 'live' && ui.follow.checked)) {
      imagesInFlight = true;
      request({ t: 'images', episode: current, step: cursor });
    }
  }
  view.render();
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
