// The renaming logic create-daemon shares with the in-repo scaffold
// (tools/scaffold): name rules and spellings, payload protocol ids, and the
// rewrite of apps/demo-daemon's names into a new daemon's. Re-exports only.
export { CreateDaemonError } from '../errors.js';
export { MAX_NAME_LENGTH, NAME_PATTERN, type NameForms, nameForms, nameProblem } from './names.js';
export {
  AVOIDED_IDS,
  deriveProtocolId,
  formatProtocolId,
  PRIVATE_USE_MAX,
  PRIVATE_USE_MIN,
} from './protocol-id.js';
export {
  createRewritePlan,
  DEMO_DAEMON_SOURCE,
  type IdentifierClash,
  identifierClashes,
  type Leftover,
  leftovers,
  type RewritePlan,
  type RewriteSource,
  type RewriteTarget,
  rewritePath,
  rewriteText,
} from './rewrite.js';
export {
  BARE_CAMEL_SUFFIX,
  EXCLUDED_DIRS,
  EXCLUDED_SUFFIXES,
  GENERATED_DIR,
  TEMPLATE_APP,
  TEMPLATE_PHRASES,
  TEMPLATE_PROTOCOL_ID,
  TEMPLATE_SERVICE,
  TEMPLATE_WORD,
  type TemplatePhrase,
} from './template.js';
