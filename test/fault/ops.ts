/** The fail-nth operations live in src/fault/fail-nth-ops.ts (the campaign's figures run them too). */
export * from '../../src/fault/fail-nth-ops.ts';
