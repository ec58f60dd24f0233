/**
 * Robot registry: built-in descriptions by id, plus user robots loaded from URDF files and
 * registered under their own id. Scenes name their robot by id (SceneDesc.robot).
 */
import type { ColliderDesc } from '../types.ts';
import { AIRBOT_PLAY } from './airbot_play.ts';
import { robotSpecOf, validateRobotDescription, type RobotDescription, type RobotSpec } from './description.ts';

export type { RobotDescription, RobotSpec, JointDesc, LinkDesc, JointLimit, Inertial } from './description.ts';
export { RobotDescriptionError, validateRobotDescription, robotSpecOf } from './description.ts';
export { Kinematics, type IkResult, type IkOptions } from './kinematics.ts';
export { loadUrdfRobot, urdfToRobot, parseXml, type UrdfOptions } from './urdf.ts';

const robots = new Map<string, RobotDescription>([[AIRBOT_PLAY.id, validateRobotDescription(AIRBOT_PLAY)]]);

/** The description registered under `id`; throws listing the known ids. */
export function getRobot(id: string): RobotDescription {
  const d = robots.get(id);
  if (!d) throw new Error(`unknown robot '${id}' (expected one of: ${[...robots.keys()].join(', ')})`);
  return d;
}

/** Register (or replace) a description under its id, after validating it. */
export function registerRobot(desc: RobotDescription): RobotDescription {
  robots.set(desc.id, validateRobotDescription(desc));
  return desc;
}

/** Ids of all registered robots. */
export function robotIds(): string[] {
  return [...robots.keys()];
}

/**
 * What the renderer draws for robot `id`: each link's colliders (visual-only ones included) in the
 * link frame; the link's world pose is `SimState.links[link]`.
 */
export function robotLinkVisuals(id: string): Array<{ link: string; colliders: ColliderDesc[] }> {
  return getRobot(id).links.map((l) => ({ link: l.name, colliders: l.colliders }));
}

/** Joint names and limits of robot `id`, available without building a world. */
export function robotSpec(id: string): RobotSpec {
  return robotSpecOf(getRobot(id));
}
