/** The fail-nth operations live in tools/fault/fail-nth-ops.ts (the campaign's figures run them too). */
export * from '../../../tools/fault/fail-nth-ops.ts';
