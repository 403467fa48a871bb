// Types of the ESLint rule in doors.js, for the test that exercises it.
import type { Rule } from 'eslint';

declare const doors: Rule.RuleModule;
export default doors;
