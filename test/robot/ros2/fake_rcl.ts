/**
 * A fake of the small rclnodejs surface the bridge uses (robot/ros2/rcl.ts). Publishers CDR-encode
 * every message with the type's definition, so a message rclnodejs could not serialise fails here.
 */
import type { RclActionClient, RclNode, Rclnodejs, RclPublisher } from '../../../robot/ros2/rcl.ts';
import { codec, type RosType } from '../../../robot/ros2/messages.ts';

export interface FakeQos {
  history: number;
  depth: number;
  reliability: number;
  durability: number;
}

export interface FakeSub {
  type: string;
  topic: string;
  qos: FakeQos;
  callback: (msg: any) => void;
}

export interface FakePub {
  type: string;
  topic: string;
  qos: FakeQos;
  messages: unknown[];
}

function rosType(typeClass: string): RosType {
  return typeClass.replace('/msg/', '/') as RosType;
}

export class FakeRcl {
  inits = 0;
  shutdowns = 0;
  spun = false;
  destroyed = false;
  subs: FakeSub[] = [];
  pubs: FakePub[] = [];
  goals: Array<{ type: string; name: string; goal: unknown }> = [];
  actionServerUp = true;

  module(): Rclnodejs {
    const fake = this;
    class QoS implements FakeQos {
      constructor(
        public history = 0,
        public depth = 0,
        public reliability = 0,
        public durability = 0,
      ) {}
    }
    class Node implements RclNode {
      constructor(readonly name: string) {}
      createPublisher(typeClass: string, topic: string, options: { qos: unknown }): RclPublisher {
        const pub: FakePub = { type: typeClass, topic, qos: options.qos as FakeQos, messages: [] };
        fake.pubs.push(pub);
        const c = codec(rosType(typeClass));
        return {
          publish(message: unknown) {
            c.encode(message); // throws if the message does not fit its type
            pub.messages.push(message);
          },
        };
      }
      createSubscription(typeClass: string, topic: string, options: { qos: unknown }, callback: (msg: any) => void): unknown {
        const sub: FakeSub = { type: typeClass, topic, qos: options.qos as FakeQos, callback };
        fake.subs.push(sub);
        return sub;
      }
      spin(): void {
        fake.spun = true;
      }
      destroy(): void {
        fake.destroyed = true;
      }
    }
    class ActionClient implements RclActionClient {
      constructor(
        _node: RclNode,
        readonly type: string,
        readonly name: string,
      ) {}
      async waitForServer(): Promise<boolean> {
        return fake.actionServerUp;
      }
      async sendGoal(goal: unknown) {
        codec('control_msgs/GripperCommand').encode((goal as { command: unknown }).command);
        fake.goals.push({ type: this.type, name: this.name, goal });
        return { accepted: true };
      }
    }
    return {
      init: async () => void fake.inits++,
      shutdown: () => void fake.shutdowns++,
      Node,
      QoS,
      ActionClient,
    };
  }

  /** Deliver a message to every subscription on `topic` (CDR round trip first, as the wire would). */
  deliver(topic: string, msg: unknown): number {
    let n = 0;
    for (const s of this.subs.filter((x) => x.topic === topic)) {
      const c = codec(rosType(s.type));
      s.callback(c.decode(c.encode(msg)));
      n++;
    }
    return n;
  }

  pub(topic: string): FakePub {
    const p = this.pubs.find((x) => x.topic === topic);
    if (!p) throw new Error(`no publisher on ${topic} (have: ${this.pubs.map((x) => x.topic).join(', ')})`);
    return p;
  }

  sub(topic: string): FakeSub {
    const s = this.subs.find((x) => x.topic === topic);
    if (!s) throw new Error(`no subscription on ${topic} (have: ${this.subs.map((x) => x.topic).join(', ')})`);
    return s;
  }
}
