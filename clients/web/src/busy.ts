/** A task a button starts: the button shows it is busy meanwhile, and a failure is told in a toast. */

import { showToast } from "vant";
import { type Ref, ref } from "vue";

import { T } from "./texts";

export function useBusy(): { busy: Ref<boolean>; run: (task: () => Promise<void>, failure?: string) => Promise<void> } {
  const busy = ref<boolean>(false);
  async function run(task: () => Promise<void>, failure = T.genericError): Promise<void> {
    busy.value = true;
    try {
      await task();
    } catch (error) {
      showToast((error as Error).message || failure);
    } finally {
      busy.value = false;
    }
  }
  return { busy, run };
}
