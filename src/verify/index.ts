export { verifyFile, VerifyExit, type VerifyOptions, type VerifyReport } from './verify.js';
export { CHECK_CODES, severityOf, type CheckCode, type Code as CheckCodeName, type Severity } from './codes.js';
export { Findings, MAX_FINDINGS_PER_CODE, type Finding } from './findings.js';
