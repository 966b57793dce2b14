// The two Node floors the broker suites lean on, started from source for a
// test file (a fresh clone has no dist/ when the tests run): the wire floor
// (the handoff of record done the cheapest right way) and the Hello floor,
// whose Negotiated names the wire floor's daemon so a client can follow it.
import { join } from 'node:path';
import {
  type BareHandoff,
  type HelloFloor,
  startBareHandoff,
  startHelloFloor,
} from '../src/broker/bare-handoff.ts';

/** Node flags that load the packages from source, as every test runs. */
export const fromSource = ['--conditions=@handoff/source', '--import', 'tsx'];

export interface Floors {
  floor: BareHandoff;
  helloFloor: HelloFloor;
  stop(): Promise<void>;
}

/** Both floors, their sockets in `dir`; neither left running if the second fails to start. */
export async function startFloors(dir: string): Promise<Floors> {
  const floor = await startBareHandoff(dir, { kind: 'wire', nodeArgs: fromSource });
  let helloFloor: HelloFloor;
  try {
    helloFloor = await startHelloFloor(join(dir, 'hello-floor.sock'), {
      service: 'echo-plain',
      version: '1.0.0',
      endpoint: floor.directPath,
      nodeArgs: fromSource,
    });
  } catch (error) {
    await floor.stop();
    throw error;
  }
  return {
    floor,
    helloFloor,
    stop: async () => {
      await Promise.all([floor.stop(), helloFloor.stop()]);
    },
  };
}
