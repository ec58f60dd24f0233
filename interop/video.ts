/**
 * MP4 video through the system's ffmpeg/ffprobe (Debian's `ffmpeg` package): raw RGB frames are
 * piped in and out, so nothing here encodes or decodes video itself.
 *
 * Encoding is streamed: `openVideoEncoder` starts one ffmpeg process and frames are written as they
 * come (an export never holds a whole camera's frames in memory), with back-pressure from the pipe.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';

/**
 * Codecs the exporter offers: H.264 (yuv420p, plays everywhere), AV1 (LeRobot's own default,
 * smaller), or lossless H.264 (libx264rgb at qp 0: RGB frames come back bit-exact; decoded by
 * ffmpeg-based readers such as LeRobot's, not by browsers).
 */
export type VideoCodec = 'h264' | 'av1' | 'h264-lossless';
export const VIDEO_CODECS: readonly VideoCodec[] = ['h264', 'av1', 'h264-lossless'];

/** ffmpeg arguments and stream facts per codec. GOP 2 as LeRobot records, so random frame access decodes little. */
export const CODECS: Record<VideoCodec, { args: string[]; codecName: string; pixFmt: string }> = {
  h264: { args: ['-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-g', '2', '-pix_fmt', 'yuv420p'], codecName: 'h264', pixFmt: 'yuv420p' },
  av1: { args: ['-c:v', 'libsvtav1', '-crf', '30', '-g', '2', '-preset', '8', '-pix_fmt', 'yuv420p'], codecName: 'av1', pixFmt: 'yuv420p' },
  'h264-lossless': { args: ['-c:v', 'libx264rgb', '-qp', '0', '-g', '2', '-pix_fmt', 'rgb24'], codecName: 'h264', pixFmt: 'gbrp' },
};

/** Thrown when ffmpeg is missing or fails; the message says which and how to install it. */
export class VideoToolError extends Error {
  override name = 'VideoToolError';
}

function requireTool(tool: 'ffmpeg' | 'ffprobe'): void {
  const r = spawnSync(tool, ['-version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) {
    throw new VideoToolError(`'${tool}' was not found or does not run (${r.error?.message ?? `exit ${r.status}`}); install Debian's ffmpeg package (apt-get install ffmpeg)`);
  }
}

/** A running encoder: write frames in order, then `close()`. */
export interface VideoEncoder {
  readonly file: string;
  readonly frames: number;
  /** Append one RGB frame (width*height*3 bytes, row-major from the top-left). */
  write(rgb: Uint8Array): Promise<void>;
  /** Finish the file; rejects with ffmpeg's error output if encoding failed. */
  close(): Promise<void>;
}

/**
 * Start encoding `file` (MP4, constant `fps`). Frame n gets the timestamp n/fps, which LeRobot's
 * decoder looks frames up by. For the yuv420p codecs width and height must be even (the chroma
 * planes are half size).
 */
export function openVideoEncoder(file: string, width: number, height: number, fps: number, codec: VideoCodec = 'h264'): VideoEncoder {
  requireTool('ffmpeg');
  const spec = CODECS[codec];
  if (!spec) throw new RangeError(`video codec must be one of ${VIDEO_CODECS.join(', ')}, got '${codec}'`);
  const even = spec.pixFmt === 'yuv420p';
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2 || (even && (width % 2 || height % 2))) {
    throw new RangeError(`video size must be integers >= 2${even ? ', even for yuv420p' : ''}, got ${width}x${height}`);
  }
  if (!Number.isInteger(fps) || fps <= 0) throw new RangeError(`video fps must be a positive integer, got ${fps}`);
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0',
    ...spec.args, '-movflags', '+faststart', '-f', 'mp4', file,
  ];
  const proc: ChildProcessWithoutNullStreams = spawn('ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.stdout.resume();
  const exited = new Promise<number | null>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => resolve(code));
  });
  // A pipe error (ffmpeg died) surfaces through `exited` with its stderr; keep it from being unhandled.
  let pipeError: Error | null = null;
  proc.stdin.on('error', (err) => (pipeError = err));
  const frameBytes = width * height * 3;
  let frames = 0;
  return {
    file,
    get frames() {
      return frames;
    },
    async write(rgb) {
      if (rgb.length !== frameBytes) throw new RangeError(`frame ${frames} of ${file} has ${rgb.length} bytes, expected ${width}x${height}x3 = ${frameBytes}`);
      if (pipeError) throw new VideoToolError(`ffmpeg stopped while writing ${file}: ${stderr.trim() || (pipeError as Error).message}`);
      frames++;
      if (!proc.stdin.write(rgb)) await new Promise<void>((resolve) => proc.stdin.once('drain', resolve));
    },
    async close() {
      proc.stdin.end();
      const code = await exited;
      if (code !== 0) throw new VideoToolError(`ffmpeg failed to encode ${file} (exit ${code}): ${stderr.trim()}`);
    },
  };
}

/** Stream facts from ffprobe: size, codec, pixel format, frame rate and the decoded frame count. */
export interface VideoProbe {
  width: number;
  height: number;
  codec: string;
  pixFmt: string;
  fps: number;
  frames: number;
}

/** Probe the first video stream of `file`, counting its frames by decoding them. */
export function probeVideo(file: string): VideoProbe {
  requireTool('ffprobe');
  const r = spawnSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=width,height,codec_name,pix_fmt,r_frame_rate,nb_read_frames', '-of', 'json', file],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new VideoToolError(`ffprobe cannot read ${file}: ${r.stderr.trim() || r.error?.message}`);
  const stream = (JSON.parse(r.stdout) as { streams?: Array<Record<string, string | number>> }).streams?.[0];
  if (!stream) throw new VideoToolError(`${file} has no video stream`);
  const [num, den] = String(stream.r_frame_rate).split('/').map(Number);
  return {
    width: Number(stream.width),
    height: Number(stream.height),
    codec: String(stream.codec_name),
    pixFmt: String(stream.pix_fmt),
    fps: den ? num / den : num,
    frames: Number(stream.nb_read_frames),
  };
}

/** A streaming decoder: frames in file order, each width*height*3 RGB bytes. */
export interface VideoDecoder {
  readonly file: string;
  readonly width: number;
  readonly height: number;
  /** Frames handed out or skipped so far (the index of the next frame). */
  readonly position: number;
  /** The next frame, or null at the end of the file. */
  next(): Promise<Uint8Array | null>;
  /** Stop decoding (safe to call twice). */
  close(): void;
}

/**
 * Decode `file` to RGB frames one by one through an ffmpeg pipe, so a long file is never held in
 * memory: readers that need frames [a, b) read up to a, then take b - a frames.
 */
export function openVideoDecoder(file: string): VideoDecoder {
  const { width, height } = probeVideoSize(file);
  const frameBytes = width * height * 3;
  const proc = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', file, '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => resolve(code));
  });
  const chunks = proc.stdout[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer = Buffer.alloc(0);
  let ended = false;
  let position = 0;
  let closed = false;
  return {
    file,
    width,
    height,
    get position() {
      return position;
    },
    async next() {
      while (pending.length < frameBytes && !ended) {
        const r = await chunks.next();
        if (r.done) ended = true;
        else pending = pending.length ? Buffer.concat([pending, r.value]) : r.value;
      }
      if (pending.length < frameBytes) {
        const code = await exited;
        if (code !== 0 && !closed) throw new VideoToolError(`ffmpeg failed to decode ${file} (exit ${code}): ${stderr.trim()}`);
        if (pending.length) throw new VideoToolError(`${file}: stream ends inside frame ${position} (${pending.length} of ${frameBytes} bytes)`);
        return null;
      }
      const frame = new Uint8Array(pending.subarray(0, frameBytes));
      pending = pending.subarray(frameBytes);
      position++;
      return frame;
    },
    close() {
      if (closed) return;
      closed = true;
      proc.kill();
    },
  };
}

function probeVideoSize(file: string): { width: number; height: number } {
  requireTool('ffprobe');
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new VideoToolError(`ffprobe cannot read ${file}: ${r.stderr.trim() || r.error?.message}`);
  const s = (JSON.parse(r.stdout) as { streams?: Array<{ width: number; height: number }> }).streams?.[0];
  if (!s) throw new VideoToolError(`${file} has no video stream`);
  return { width: s.width, height: s.height };
}
