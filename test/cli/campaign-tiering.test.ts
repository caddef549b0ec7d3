/**
 * Issue 22: campaign workers tier up later (cli/campaign/tiering.ts). The
 * flag the runner sets, when it defers to the process's own, and, in a child
 * process, that V8 then keeps a function out of the optimising compiler that
 * its default budget would have sent there.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CAMPAIGN_INTERRUPT_BUDGET, campaignTieringFlag } from '../../cli/campaign/tiering.ts';

t.test('the runner raises the interrupt budget unless the process set one', async (t) => {
  t.equal(campaignTieringFlag([]), `--interrupt-budget=${CAMPAIGN_INTERRUPT_BUDGET}`);
  t.equal(campaignTieringFlag(['--import', 'tsx', '--max-old-space-size=4096']), `--interrupt-budget=${CAMPAIGN_INTERRUPT_BUDGET}`);
  t.equal(campaignTieringFlag(['--interrupt-budget=5000']), undefined, 'the command line wins');
  t.equal(campaignTieringFlag(['--interrupt_budget=5000']), undefined, 'in either spelling');
  t.equal(campaignTieringFlag(['--interrupt-budget', '5000']), undefined, 'with its value as the next word');
  t.equal(campaignTieringFlag(['--interrupt-budget-for-feedback-allocation=10']), `--interrupt-budget=${CAMPAIGN_INTERRUPT_BUDGET}`, 'another flag is not the budget');
});

const probe = fileURLToPath(new URL('./fixtures/tiering-probe.mjs', import.meta.url));
/** Whether V8 optimised the probe's function; compilation on the probe's thread, so the answer is known when it prints. */
function optimised(nodeArgs: string[], mode: string): boolean {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', ...nodeArgs, '--import', 'tsx', probe, mode], { encoding: 'utf8' });
  return (JSON.parse(out.trim().split('\n').pop()!) as { optimised: boolean }).optimised;
}

t.test('with the campaign budget, a function called a few thousand times stays unoptimised', async (t) => {
  t.equal(optimised([], 'default'), true, "V8's default budget optimises it");
  t.equal(optimised([], 'campaign'), false, 'the campaign budget does not');
  t.equal(optimised(['--interrupt-budget=67584'], 'campaign'), true, "a budget on the process's command line stands");
});
