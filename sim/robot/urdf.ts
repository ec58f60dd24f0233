/**
 * URDF import: turns a URDF file (links with inertials and primitive collision shapes, joints of
 * type revolute / continuous / prismatic / fixed) into our RobotDescription, so users can bring
 * their own arm. Meshes are optional and skipped (they are neither simulated nor drawn here);
 * primitive <visual> shapes become visual-only colliders. Every error names the file, the element
 * and attribute, and what was expected.
 */
import { poseMul, quatFromRpy, quatMul, symmetricEigen3 } from '../math.ts';
import type { ColliderDesc, Pose, Vec3 } from '../types.ts';
import {
  RobotDescriptionError,
  validateRobotDescription,
  type JointDesc,
  type LinkDesc,
  type RobotDescription,
} from './description.ts';

/** A parsed XML element. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** 1-based line of the opening tag, for error messages. */
  line: number;
}

/** Minimal XML parser (elements, attributes, comments, declarations, CDATA-free text ignored). */
export function parseXml(text: string, source: string): XmlElement {
  let i = 0;
  const lineAt = (pos: number) => text.slice(0, pos).split('\n').length;
  const fail = (msg: string, pos = i): never => {
    throw new RobotDescriptionError(source, `line ${lineAt(pos)}`, msg);
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<?', i) || text.startsWith('<!', i)) {
      const end = text.indexOf('>', i);
      if (end < 0) fail('unterminated declaration');
      i = end + 1;
      continue;
    }
    if (text.startsWith('</', i)) {
      const end = text.indexOf('>', i);
      if (end < 0) fail('unterminated closing tag');
      const name = text.slice(i + 2, end).trim();
      const open = stack.pop();
      if (!open) fail(`closing tag </${name}> without an opening tag`);
      if (open!.name !== name) fail(`expected </${open!.name}> (opened on line ${open!.line}), got </${name}>`);
      i = end + 1;
      continue;
    }
    const start = i;
    i++;
    const nameMatch = /^[A-Za-z_][\w.:-]*/.exec(text.slice(i));
    if (!nameMatch) fail('expected an element name after <');
    const el: XmlElement = { name: nameMatch![0], attrs: {}, children: [], line: lineAt(start) };
    i += nameMatch![0].length;
    let selfClosing = false;
    for (;;) {
      while (/\s/.test(text[i] ?? '')) i++;
      if (i >= text.length) fail(`unterminated tag <${el.name}>`, start);
      if (text.startsWith('/>', i)) {
        selfClosing = true;
        i += 2;
        break;
      }
      if (text[i] === '>') {
        i++;
        break;
      }
      const am = /^([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/.exec(text.slice(i));
      if (!am) fail(`malformed attribute in <${el.name}> (expected name="value")`);
      el.attrs[am![1]] = am![3] ?? am![4];
      i += am![0].length;
    }
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    else if (root) fail(`a second root element <${el.name}>`, start);
    else root = el;
    if (!selfClosing) stack.push(el);
  }
  if (stack.length > 0) fail(`element <${stack[stack.length - 1].name}> (line ${stack[stack.length - 1].line}) is never closed`);
  if (!root) fail('no root element');
  return root!;
}

/** Options for loading a URDF robot. Everything has a default read from the file. */
export interface UrdfOptions {
  /** Registry id (default: the URDF robot name). */
  id?: string;
  /**
   * Link whose frame is the tool centre point (default: a link named 'tcp' if there is one,
   * else the end of the longest chain of revolute/prismatic joints).
   */
  tcpLink?: string;
  /** Finger joints (default: prismatic joints that are not on the base -> tool chain). */
  fingerJoints?: string[];
  /** Finger force limit (N, default: the first finger joint's effort limit). */
  gripperForce?: number;
  /** Start configuration (default: the middle of each joint range, or 0 when inside it). */
  home?: number[];
}

function num(source: string, where: string, attr: string, value: string | undefined, required = true): number | undefined {
  if (value === undefined) {
    if (required) throw new RobotDescriptionError(source, where, `missing attribute '${attr}' (expected a number)`);
    return undefined;
  }
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new RobotDescriptionError(source, where, `attribute '${attr}': expected a number, got '${value}'`);
  return n;
}

function vec3(source: string, where: string, attr: string, value: string | undefined, fallback: Vec3): Vec3 {
  if (value === undefined) return fallback;
  const parts = value.trim().split(/\s+/);
  const nums = parts.map(Number);
  if (parts.length !== 3 || !nums.every(Number.isFinite)) {
    throw new RobotDescriptionError(source, where, `attribute '${attr}': expected 3 numbers, got '${value}'`);
  }
  return nums as Vec3;
}

function originOf(source: string, where: string, el: XmlElement | undefined): Pose {
  if (!el) return { p: [0, 0, 0], q: [0, 0, 0, 1] };
  const p = vec3(source, `${where} > origin`, 'xyz', el.attrs.xyz, [0, 0, 0]);
  const rpy = vec3(source, `${where} > origin`, 'rpy', el.attrs.rpy, [0, 0, 0]);
  return { p, q: quatFromRpy(rpy[0], rpy[1], rpy[2]) };
}

function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

function attr(source: string, where: string, el: XmlElement, name: string): string {
  const v = el.attrs[name];
  if (v === undefined || v === '') throw new RobotDescriptionError(source, where, `missing attribute '${name}'`);
  return v;
}

/** Convert one <geometry> to shapes; meshes return null (skipped). URDF cylinders run along Z, as ours. */
function geometry(source: string, where: string, geom: XmlElement | undefined): ColliderDesc['shape'] | null {
  if (!geom) throw new RobotDescriptionError(source, where, 'missing <geometry>');
  const g = geom.children[0];
  if (!g) throw new RobotDescriptionError(source, `${where} > geometry`, 'expected one of <box>, <cylinder>, <sphere>, <mesh>');
  const at = `${where} > geometry > ${g.name}`;
  switch (g.name) {
    case 'box': {
      const size = vec3(source, at, 'size', g.attrs.size ?? '', [0, 0, 0]);
      if (!size.every((s) => s > 0)) throw new RobotDescriptionError(source, at, `attribute 'size': expected 3 positive numbers, got '${g.attrs.size}'`);
      return { kind: 'box', halfExtents: [size[0] / 2, size[1] / 2, size[2] / 2] };
    }
    case 'cylinder': {
      const radius = num(source, at, 'radius', g.attrs.radius)!;
      const length = num(source, at, 'length', g.attrs.length)!;
      if (radius <= 0 || length <= 0) throw new RobotDescriptionError(source, at, 'radius and length must be positive');
      return { kind: 'cylinder', radius, halfHeight: length / 2 };
    }
    case 'sphere': {
      const radius = num(source, at, 'radius', g.attrs.radius)!;
      if (radius <= 0) throw new RobotDescriptionError(source, at, `attribute 'radius': expected a positive number, got '${g.attrs.radius}'`);
      return { kind: 'sphere', radius };
    }
    case 'mesh':
      return null;
    default:
      throw new RobotDescriptionError(source, at, `unknown geometry '${g.name}' (expected box, cylinder, sphere or mesh)`);
  }
}

/** Parse URDF text into a description (see UrdfOptions for the defaults). */
export function urdfToRobot(text: string, source: string, options: UrdfOptions = {}): RobotDescription {
  const root = parseXml(text, source);
  if (root.name !== 'robot') throw new RobotDescriptionError(source, `<${root.name}>`, "expected the root element <robot>");
  const robotName = root.attrs.name ?? 'urdf_robot';
  const links: LinkDesc[] = [];
  for (const el of root.children.filter((c) => c.name === 'link')) {
    const name = attr(source, `link (line ${el.line})`, el, 'name');
    const where = `link '${name}'`;
    const link: LinkDesc = { name, colliders: [] };
    const inertialEl = child(el, 'inertial');
    if (inertialEl) {
      const w = `${where} > inertial`;
      const o = originOf(source, w, child(inertialEl, 'origin'));
      const massEl = child(inertialEl, 'mass');
      if (!massEl) throw new RobotDescriptionError(source, w, 'missing <mass value="...">');
      const mass = num(source, `${w} > mass`, 'value', massEl.attrs.value)!;
      const inEl = child(inertialEl, 'inertia');
      if (!inEl) throw new RobotDescriptionError(source, w, 'missing <inertia ixx=... iyy=... izz=...>');
      const k = (n: string, required = true) => num(source, `${w} > inertia`, n, inEl.attrs[n], required) ?? 0;
      const ixx = k('ixx'), iyy = k('iyy'), izz = k('izz');
      const ixy = k('ixy', false), ixz = k('ixz', false), iyz = k('iyz', false);
      const eig = symmetricEigen3([ixx, ixy, ixz, ixy, iyy, iyz, ixz, iyz, izz]);
      if (!eig.values.every((v) => v >= -1e-12)) {
        throw new RobotDescriptionError(source, `${w} > inertia`, 'expected a positive semi-definite inertia tensor');
      }
      // Tiny placeholder masses (1e-15 kg "frames") count as massless.
      if (mass > 1e-9) {
        link.inertial = {
          mass,
          com: o.p,
          principal: eig.values.map((v) => Math.max(v, 0)) as Vec3,
          frame: quatMul(o.q, eig.frame),
        };
      }
    }
    for (const tag of ['collision', 'visual'] as const) {
      el.children
        .filter((c) => c.name === tag)
        .forEach((c, idx) => {
          const w = `${where} > ${tag}[${idx}]`;
          const shape = geometry(source, w, child(c, 'geometry'));
          if (!shape) return;
          const col: ColliderDesc = { shape, pose: originOf(source, w, child(c, 'origin')) };
          if (tag === 'visual') col.visualOnly = true;
          const rgba = child(child(c, 'material') ?? { name: '', attrs: {}, children: [], line: 0 }, 'color')?.attrs.rgba;
          if (rgba) {
            const v = rgba.trim().split(/\s+/).map(Number);
            if (v.length === 4 && v.every(Number.isFinite)) col.color = [v[0], v[1], v[2]];
          }
          link.colliders.push(col);
        });
    }
    links.push(link);
  }
  if (links.length === 0) throw new RobotDescriptionError(source, '<robot>', 'no <link> elements');
  const joints: JointDesc[] = [];
  for (const el of root.children.filter((c) => c.name === 'joint')) {
    const name = attr(source, `joint (line ${el.line})`, el, 'name');
    const where = `joint '${name}'`;
    const rawType = attr(source, where, el, 'type');
    if (!['revolute', 'continuous', 'prismatic', 'fixed'].includes(rawType)) {
      throw new RobotDescriptionError(source, where, `attribute 'type': expected revolute, continuous, prismatic or fixed, got '${rawType}'`);
    }
    const parentEl = child(el, 'parent');
    const childEl = child(el, 'child');
    if (!parentEl) throw new RobotDescriptionError(source, where, 'missing <parent link="...">');
    if (!childEl) throw new RobotDescriptionError(source, where, 'missing <child link="...">');
    const type = rawType === 'continuous' ? 'revolute' : (rawType as JointDesc['type']);
    // A mimic joint follows another one (a gripper's second finger with multiplier -1): loading it
    // as an independent joint puts that finger wherever its own controller leaves it. Coupled
    // joints are not supported; say so rather than simulate a different robot.
    const mimic = child(el, 'mimic');
    if (mimic) {
      throw new RobotDescriptionError(
        source,
        `${where} > mimic`,
        `mimic joints are not supported (this one follows '${mimic.attrs.joint ?? '?'}' with multiplier ${mimic.attrs.multiplier ?? 1}, offset ${mimic.attrs.offset ?? 0}); describe the finger as its own prismatic joint opening outward (the gripper's fingers are driven together)`,
      );
    }
    const axisRaw = vec3(source, `${where} > axis`, 'xyz', child(el, 'axis')?.attrs.xyz, [1, 0, 0]);
    const n = Math.hypot(...axisRaw);
    if (type !== 'fixed' && !(n > 0)) throw new RobotDescriptionError(source, `${where} > axis`, "attribute 'xyz': expected a non-zero vector");
    const j: JointDesc = {
      name,
      type,
      parent: attr(source, `${where} > parent`, parentEl, 'link'),
      child: attr(source, `${where} > child`, childEl, 'link'),
      origin: originOf(source, where, child(el, 'origin')),
      axis: type === 'fixed' ? [0, 0, 1] : [axisRaw[0] / n, axisRaw[1] / n, axisRaw[2] / n],
    };
    if (type !== 'fixed') {
      const lim = child(el, 'limit');
      const w = `${where} > limit`;
      if (!lim) throw new RobotDescriptionError(source, where, 'missing <limit effort="..." velocity="..."> (and lower/upper for revolute and prismatic)');
      const continuous = rawType === 'continuous';
      j.limit = {
        lower: continuous ? -2 * Math.PI : num(source, w, 'lower', lim.attrs.lower)!,
        upper: continuous ? 2 * Math.PI : num(source, w, 'upper', lim.attrs.upper)!,
        effort: num(source, w, 'effort', lim.attrs.effort)!,
        velocity: num(source, w, 'velocity', lim.attrs.velocity)!,
      };
    }
    joints.push(j);
  }
  const declared = new Set(links.map((l) => l.name));
  for (const j of joints) {
    for (const side of ['parent', 'child'] as const) {
      if (!declared.has(j[side])) {
        throw new RobotDescriptionError(source, `joint '${j.name}' > ${side}`, `unknown link '${j[side]}' (expected one of: ${[...declared].join(', ')})`);
      }
    }
  }
  // Base: the link that is nobody's child.
  const children = new Set(joints.map((j) => j.child));
  const roots = links.filter((l) => !children.has(l.name));
  if (roots.length !== 1) {
    throw new RobotDescriptionError(source, '<robot>', `expected exactly one root link, found ${roots.length} (${roots.map((r) => r.name).join(', ')})`);
  }
  const baseLink = roots[0].name;
  // Fold massless links on fixed joints into their parents (frames such as 'world' children,
  // tool points, camera mounts): their colliders move to the parent, and their frame is kept
  // as an offset so a tool point can still be named.
  const frameOffset = new Map<string, { link: string; pose: Pose }>();
  let folded = true;
  while (folded) {
    folded = false;
    for (const j of joints) {
      const c = links.find((l) => l.name === j.child);
      if (!c || j.type !== 'fixed' || c.inertial) continue;
      if (joints.some((k) => k.parent === c.name)) continue; // only leaves
      const parent = links.find((l) => l.name === j.parent);
      if (!parent) continue;
      for (const col of c.colliders) parent.colliders.push({ ...col, pose: poseMul(j.origin, col.pose ?? { p: [0, 0, 0], q: [0, 0, 0, 1] }) });
      frameOffset.set(c.name, { link: parent.name, pose: j.origin });
      for (const [k, v] of frameOffset) if (v.link === c.name) frameOffset.set(k, { link: parent.name, pose: poseMul(j.origin, v.pose) });
      links.splice(links.indexOf(c), 1);
      joints.splice(joints.indexOf(j), 1);
      folded = true;
      break;
    }
  }
  const linkNames = new Set(links.map((l) => l.name));
  const resolveFrame = (name: string, what: string): { link: string; pose: Pose } => {
    if (linkNames.has(name)) return { link: name, pose: { p: [0, 0, 0], q: [0, 0, 0, 1] } };
    const f = frameOffset.get(name);
    if (f) return f;
    throw new RobotDescriptionError(source, what, `unknown link '${name}' (expected one of: ${[...linkNames, ...frameOffset.keys()].join(', ')})`);
  };
  const byChild = new Map(joints.map((j) => [j.child, j]));
  const chainTo = (link: string): JointDesc[] => {
    const out: JointDesc[] = [];
    let n = link;
    while (n !== baseLink) {
      const j = byChild.get(n);
      if (!j) break;
      out.unshift(j);
      n = j.parent;
    }
    return out;
  };
  // Tool point.
  let tcpName = options.tcpLink;
  if (!tcpName) {
    if (linkNames.has('tcp') || frameOffset.has('tcp')) tcpName = 'tcp';
    else {
      const movable = (l: string) => chainTo(l).filter((j) => j.type !== 'fixed').length;
      const fingerish = new Set(joints.filter((j) => j.type === 'prismatic').map((j) => j.child));
      tcpName = links.filter((l) => !fingerish.has(l.name)).reduce((best, l) => (movable(l.name) > movable(best.name) ? l : best), links[0]).name;
    }
  }
  const tcp = resolveFrame(tcpName, 'tcpLink');
  const chain = chainTo(tcp.link);
  const armJoints = chain.filter((j) => j.type !== 'fixed').map((j) => j.name);
  const fingerJoints = options.fingerJoints ?? joints.filter((j) => j.type === 'prismatic' && !armJoints.includes(j.name)).map((j) => j.name);
  const byName = new Map(joints.map((j) => [j.name, j]));
  for (const f of fingerJoints) {
    if (!byName.has(f)) throw new RobotDescriptionError(source, 'fingerJoints', `unknown joint '${f}'`);
  }
  const fingerLimits = fingerJoints.map((f) => byName.get(f)!.limit!);
  const gripper = fingerLimits.length
    ? { min: Math.max(...fingerLimits.map((l) => l.lower)), max: Math.min(...fingerLimits.map((l) => l.upper)), force: options.gripperForce ?? fingerLimits[0].effort }
    : { min: 0, max: 0, force: 0 };
  const home =
    options.home ??
    armJoints.map((n) => {
      const l = byName.get(n)!.limit!;
      return l.lower <= 0 && l.upper >= 0 ? 0 : (l.lower + l.upper) / 2;
    });
  const desc: RobotDescription = {
    id: options.id ?? robotName,
    source,
    baseLink,
    links,
    joints,
    armJoints,
    fingerJoints,
    gripper,
    tcp,
    home,
  };
  return validateRobotDescription(desc);
}

/** Load a URDF file (see urdfToRobot). Errors name the file. */
export function loadUrdfRobot(path: string, options: UrdfOptions = {}): RobotDescription {
  let text: string;
  try {
    // Loaded on demand, so browser bundles of sim/robot (the viewer draws link visuals) need no fs.
    const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new RobotDescriptionError(path, 'file', `cannot read (${(e as Error).message})`);
  }
  return urdfToRobot(text, path, options);
}

