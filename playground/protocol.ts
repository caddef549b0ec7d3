/** The messages between the playground's page and the worker that runs the machines. */
import type { MachineKind } from '../machines/layout.ts';

export interface RunRequest {
  type: 'run';
  scenario: string;
  machines: MachineKind[];
  seed: number;
  params: Record<string, string>;
  /** A fault plan as JSON text; empty for none (the scenario's own behaviour). */
  plan: string;
}

export interface PointsRequest {
  type: 'points';
  scenario: string;
  machine: MachineKind;
}

export type Request = RunRequest | PointsRequest;

export type Reply =
  | { type: 'progress'; text: string }
  | { type: 'done'; ok: boolean; html: string; trace: string; events: number; narrative: string[]; comparison: string[] }
  | { type: 'points'; points: { name: string; description: string; actions: readonly string[] }[] }
  | { type: 'error'; message: string; usage: boolean };
