/**
 * Headless WebGL2 in Node: a `gl` (headless-gl 9.x, ANGLE) context wrapped in a three.js
 * WebGLRenderer. `gl` is an optional dependency with a native build, and it needs an X display,
 * so both are checked here and reported with what to install.
 */
import { createRequire } from 'node:module';
import * as THREE from 'three';
import { ensureDisplay, RenderUnavailableError, XVFB_INSTALL_HINT } from './xvfb.ts';

export { RenderUnavailableError } from './xvfb.ts';

const GL_INSTALL_HINT =
  "install the optional npm package 'gl' 9.x (npm install gl@^9.0.0-rc.10; building it needs python3, make, g++ and, on Debian, libxi-dev libglu1-mesa-dev libglew-dev pkg-config)";

type StackGLContext = WebGL2RenderingContext & {
  getExtension(name: 'STACKGL_destroy_context'): { destroy(): void } | null;
};
type CreateGL = (width: number, height: number, options: WebGLContextAttributes & { createWebGL2Context: true }) => StackGLContext | null;

function loadGL(): CreateGL {
  const require = createRequire(import.meta.url);
  try {
    return require('gl') as CreateGL;
  } catch (err) {
    throw new RenderUnavailableError(`headless rendering is unavailable: ${(err as Error).message.split('\n')[0]}; ${GL_INSTALL_HINT}`);
  }
}

let holdingDisplay: string | null = null;

/**
 * Loads `gl` and makes sure an X display exists (starting a private Xvfb when DISPLAY is unset),
 * in that order: `gl` and xvfb.ts both clean up on process exit, in the order their hooks were
 * installed, and `gl`'s (which talks to the X server) must run before the server is stopped.
 * Returns the display.
 *
 * `holdDisplay`: also connect this process to the display for its lifetime, for when other
 * processes (VecEnv worker processes) render on it. The private Xvfb runs with `-terminate`, so
 * without a client here it would exit when the last worker closes and the next workers would be
 * handed a display on its way out. One GL context is created and destroyed; ANGLE keeps its
 * display connection until the process exits.
 */
export async function prepareHeadless(options: { holdDisplay?: boolean } = {}): Promise<string> {
  const createGL = loadGL();
  const display = await ensureDisplay();
  if (options.holdDisplay && holdingDisplay !== display) {
    const gl = createGL(1, 1, { createWebGL2Context: true });
    if (!gl) throw new RenderUnavailableError(`could not create a WebGL context on display ${display}; ${XVFB_INSTALL_HINT}; ${GL_INSTALL_HINT}`);
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    holdingDisplay = display;
  }
  return display;
}

/** A three.js renderer drawing into an offscreen GL context of a fixed maximum size. */
export interface HeadlessRenderer {
  readonly renderer: THREE.WebGLRenderer;
  readonly gl: WebGL2RenderingContext;
  readonly width: number;
  readonly height: number;
  /** Destroys the GL context. */
  dispose(): void;
}

/**
 * Creates a WebGL2 context of `width` x `height` (the largest image it will render; smaller images
 * use a viewport in its corner) and a three.js renderer on it. Starts a private Xvfb when DISPLAY
 * is unset. Throws RenderUnavailableError naming what to install when nothing can render.
 */
export async function createHeadlessRenderer(width: number, height: number): Promise<HeadlessRenderer> {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`renderer size must be positive integers, got ${width}x${height}`);
  }
  const createGL = loadGL();
  const display = await prepareHeadless();
  const gl = createGL(width, height, {
    createWebGL2Context: true,
    // Exact pixels: segmentation ids must not blend at edges, and RGB must match depth/ids.
    antialias: false,
    alpha: false,
    depth: true,
    stencil: false,
    preserveDrawingBuffer: true,
  });
  if (!gl) {
    throw new RenderUnavailableError(
      `could not create a WebGL2 context on display ${display}; check that the X server answers (${XVFB_INSTALL_HINT}) and that 'gl' is built (${GL_INSTALL_HINT})`,
    );
  }
  if (typeof (gl as Partial<WebGL2RenderingContext>).createVertexArray !== 'function') {
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    throw new RenderUnavailableError(`the installed 'gl' gives WebGL1 only, three.js needs WebGL2; ${GL_INSTALL_HINT}`);
  }
  // three.js only needs a canvas-shaped object: its size, a style and event hooks.
  const canvas = {
    width,
    height,
    style: {},
    addEventListener() {},
    removeEventListener() {},
    getContext: () => gl,
  };
  const renderer = new THREE.WebGLRenderer({ canvas: canvas as unknown as HTMLCanvasElement, context: gl, antialias: false });
  renderer.setPixelRatio(1);
  let disposed = false;
  return {
    renderer,
    gl,
    width,
    height,
    dispose() {
      if (disposed) return;
      disposed = true;
      renderer.dispose();
      gl.getExtension('STACKGL_destroy_context')?.destroy();
    },
  };
}
