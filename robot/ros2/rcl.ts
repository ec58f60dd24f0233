/**
 * The small part of rclnodejs the bridge uses, as a typed interface: the real module implements it
 * (loaded lazily, because rclnodejs is an optional dependency that needs a sourced ROS 2 install),
 * and tests implement it with a fake. Names and argument orders follow rclnodejs 2.x
 * (`new Node(name)`, `createPublisher(type, topic, {qos})`, `createSubscription(type, topic, {qos}, cb)`,
 * `new ActionClient(node, type, name)`, `QoS` with rmw policy enums).
 */

/** rmw policy values as rclnodejs's QoS enums number them. */
export const RMW = {
  historyKeepLast: 1,
  reliabilityReliable: 1,
  reliabilityBestEffort: 2,
  durabilityTransientLocal: 1,
  durabilityVolatile: 2,
} as const;

export interface RclPublisher {
  publish(message: unknown): void;
}

export interface RclSubscriptionOptions {
  qos: unknown;
}

export interface RclNode {
  createPublisher(typeClass: string, topic: string, options: RclSubscriptionOptions): RclPublisher;
  createSubscription(typeClass: string, topic: string, options: RclSubscriptionOptions, callback: (message: any) => void): unknown;
  spin(timeout?: number): void;
  destroy(): void;
}

export interface RclGoalHandle {
  accepted?: boolean;
  isAccepted?(): boolean;
}

export interface RclActionClient {
  waitForServer(timeoutMs?: number): Promise<boolean>;
  sendGoal(goal: unknown): Promise<RclGoalHandle>;
  destroy?(): void;
}

/** The rclnodejs module surface: init/shutdown, Node, QoS, ActionClient. */
export interface Rclnodejs {
  init(): Promise<void>;
  shutdown(): void | Promise<void>;
  Node: new (name: string) => RclNode;
  QoS: new (history?: number, depth?: number, reliability?: number, durability?: number) => unknown;
  ActionClient: new (node: RclNode, typeClass: string, actionName: string) => RclActionClient;
}

/** rclnodejs could not be loaded; the message says what to install or source. */
export class Ros2UnavailableError extends Error {
  override name = 'Ros2UnavailableError';
}

/**
 * Import rclnodejs on first use. Fails with what to do: install the optional dependency, or source
 * a ROS 2 install (its native addon links against the sourced distribution's libraries).
 */
export async function loadRclnodejs(importer: () => Promise<unknown> = () => import('rclnodejs' as string)): Promise<Rclnodejs> {
  let mod: any;
  try {
    mod = await importer();
  } catch (err) {
    const reason = (err as Error).message ?? String(err);
    const missing = /Cannot find (package|module) 'rclnodejs'|ERR_MODULE_NOT_FOUND/.test(reason);
    const distro = process.env.ROS_DISTRO;
    const hint = missing
      ? 'rclnodejs is not installed. On a machine with ROS 2 Humble or Jazzy: `source /opt/ros/$ROS_DISTRO/setup.bash && npm install rclnodejs@^2.2.0`'
      : distro
        ? `rclnodejs failed to load with ROS_DISTRO=${distro}; rebuild it against this install: \`source /opt/ros/${distro}/setup.bash && npm rebuild rclnodejs\``
        : 'no ROS 2 environment is sourced (ROS_DISTRO is unset): run `source /opt/ros/humble/setup.bash` (or jazzy) before `evovla deploy --robot ros2`';
    throw new Ros2UnavailableError(`cannot use --robot ros2: ${hint}. (underlying error: ${reason.split('\n')[0]}). Try --robot sim to run the same loop against the simulator.`);
  }
  const m = (mod?.default ?? mod) as Partial<Rclnodejs>;
  for (const key of ['init', 'shutdown', 'Node', 'QoS', 'ActionClient'] as const) {
    if (!m[key]) throw new Ros2UnavailableError(`the loaded rclnodejs has no '${key}' export; expected rclnodejs ^2.2.0`);
  }
  return m as Rclnodejs;
}

/** QoS for sensor streams (joint states, images): best effort, keep last 5 (rclcpp's SensorDataQoS). */
export function sensorQos(rcl: Rclnodejs): unknown {
  return new rcl.QoS(RMW.historyKeepLast, 5, RMW.reliabilityBestEffort, RMW.durabilityVolatile);
}

/** QoS for latched data such as /robot_description: reliable, transient local, keep last 1. */
export function latchedQos(rcl: Rclnodejs): unknown {
  return new rcl.QoS(RMW.historyKeepLast, 1, RMW.reliabilityReliable, RMW.durabilityTransientLocal);
}

/** QoS for commands and operator inputs: reliable, keep last 10, volatile (ros2_control's controllers subscribe so). */
export function commandQos(rcl: Rclnodejs): unknown {
  return new rcl.QoS(RMW.historyKeepLast, 10, RMW.reliabilityReliable, RMW.durabilityVolatile);
}
