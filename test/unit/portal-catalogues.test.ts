// The portal's strings go through its catalogues: no English text hard-coded in JSX (text between
// tags, or a literal in a user-visible attribute), and a Simplified Chinese catalogue that really
// translates (not the English copied) and keeps each message's {placeholders}. The TSX files are
// parsed (rolldown's parser, which Vite builds with), not matched with patterns.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAst } from 'rolldown/parseAst';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../support/berth.ts';

const UI_SRC = path.join(REPO_ROOT, 'ui', 'src');

// Loaded by path: the portal's modules follow the bundler's import rules (ui/tsconfig.json, checked
// on their own by test/run.js), not the server's.
const load = async (file: string): Promise<Record<string, unknown>> => (await import(pathToFileURL(path.join(UI_SRC, file)).href)) as Record<string, unknown>;
const en = (await load('i18n/en/index.ts')).en as Record<string, string>;
const zh = (await load('i18n/zh-CN/index.ts')).catalogue as Record<string, string>;

/** Text that may stay as it is in JSX: the product's name, and the language picker's own label (both languages at once). */
const JSX_ALLOWED = new Set(['Berth', 'Language / 语言', 'Bearer …']);

/** Attributes a user reads or hears; a literal there bypasses the catalogue. */
const VISIBLE_ATTRIBUTES = new Set(['aria-label', 'aria-description', 'aria-placeholder', 'aria-valuetext', 'placeholder', 'title', 'alt', 'label', 'caption', 'header', 'message', 'confirmLabel', 'filterLabel', 'subtitle', 'hint', 'emptyText']);

/**
 * Words a Chinese message may keep as they are: product and protocol names, units, and
 * "Webhooks", which Harbor's Chinese UI keeps too. A message made only of these needs no translation.
 */
const NAMES = new Set(['Berth', 'GiB', 'MiB', 'KiB', 'TiB', 'LDAP', 'OpenID', 'Connect', 'OIDC', 'URL', 'TLS', 'JSON', 'CloudEvents', 'Harbor', 'Docker', 'Hub', 'Quay', 'Basic', 'Bearer', 'SQLite', 'PostgreSQL', 'S3', 'OCI', 'Webhooks', 'Webhook', 'cron']);

/** Whether `text` has a word to translate: letters outside {placeholders} that are not one of {@link NAMES}. */
function needsTranslation(text: string): boolean {
  const words = text.replace(/\{\w+\}/g, ' ').match(/\p{L}[\p{L}\d]*/gu) ?? [];
  return words.some((word) => !NAMES.has(word));
}

/**
 * Literals that are examples in no language: a URL, a path, a file name or a glob (no space, and a
 * `/`, `*`, `.` or `:`), as placeholders show them.
 */
const isExample = (text: string) => !/\s/.test(text) && /[/*.:]/.test(text);

function tsxFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return tsxFiles(file);
    return name.endsWith('.tsx') ? [file] : [];
  });
}

interface Node {
  type: string;
  start: number;
  [key: string]: unknown;
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && typeof (value as Node).type === 'string';
}

/** Calls `visit` for every node below `node`, depth first. */
function walk(node: unknown, visit: (node: Node) => void): void {
  if (Array.isArray(node)) {
    for (const child of node) walk(child, visit);
    return;
  }
  if (!isNode(node)) return;
  visit(node);
  for (const [key, value] of Object.entries(node)) if (key !== 'type' && typeof value === 'object') walk(value, visit);
}

const hasLetters = (text: string) => /\p{L}/u.test(text);

/** The static text of a string literal or a template without expressions; undefined otherwise. */
function literalText(node: unknown): string | undefined {
  if (!isNode(node)) return undefined;
  if (node.type === 'Literal' && typeof node.value === 'string') return node.value;
  if (node.type === 'TemplateLiteral' && Array.isArray(node.expressions) && node.expressions.length === 0) {
    return ((node.quasis as { value: { cooked: string | null } }[])[0]?.value.cooked ?? '') || undefined;
  }
  return undefined;
}

/** Hard-coded user-visible text in one TSX source: `line: text` for each. */
function hardCodedText(source: string, file: string): { line: number; text: string }[] {
  const program = parseAst(source, { lang: 'tsx' }, file);
  const lineOf = (offset: number) => source.slice(0, offset).split('\n').length;
  const found: { line: number; text: string }[] = [];
  const report = (node: Node, text: string) => {
    const trimmed = text.replace(/\s+/g, ' ').trim();
    if (hasLetters(trimmed) && !JSX_ALLOWED.has(trimmed) && !isExample(trimmed)) found.push({ line: lineOf(node.start), text: trimmed });
  };
  walk(program, (node) => {
    if (node.type === 'JSXText') report(node, String(node.value));
    if (node.type === 'JSXExpressionContainer') {
      const text = literalText(node.expression);
      // A literal child ({'Save'}); a literal attribute value is judged below by its name.
      if (text !== undefined && !(node as { __attribute?: boolean }).__attribute) report(node, text);
    }
    if (node.type === 'JSXAttribute' && isNode(node.name) && VISIBLE_ATTRIBUTES.has(String(node.name.name))) {
      const value = node.value;
      if (isNode(value) && value.type === 'JSXExpressionContainer') {
        (value as { __attribute?: boolean }).__attribute = true;
        const text = literalText(value.expression);
        if (text !== undefined) report(node, text);
      } else {
        const text = literalText(value);
        if (text !== undefined) report(node, text);
      }
    }
    if (node.type === 'JSXAttribute' && isNode(node.value) && node.value.type === 'JSXExpressionContainer') {
      // Other attributes (className="…", to={'/x'}) are not text a user reads.
      (node.value as { __attribute?: boolean }).__attribute = true;
    }
  });
  return found;
}

test('the scanner finds text outside t() and leaves t() calls, expressions and allowed names alone', () => {
  const sample = [
    'export function X({ n }: { n: number }) {',
    '  return (',
    '    <div className="card" title="Details">',
    '      <h1>{t("x.title")}</h1>',
    '      <p>Hello there</p>',
    "      <button aria-label={'Close'}>{'Save'}</button>",
    '      <span>{n} · {t("x.count")}</span>',
    '      <Field label={t("x.label")} placeholder="e.g. team" />',
    '      <b>Berth</b> <i>—</i> <input placeholder="https://registry.example.com" />',
    '    </div>',
    '  );',
    '}',
  ].join('\n');
  assert.deepEqual(hardCodedText(sample, 'sample.tsx'), [
    { line: 3, text: 'Details' },
    { line: 5, text: 'Hello there' },
    { line: 6, text: 'Close' },
    { line: 6, text: 'Save' },
    { line: 8, text: 'e.g. team' },
  ]);
});

test('no user-visible English in the portal\'s JSX outside t()', () => {
  const files = tsxFiles(UI_SRC);
  assert.ok(files.length > 10, `the portal's TSX files were found in ${UI_SRC}`);
  const offending: string[] = [];
  for (const file of files) {
    for (const hit of hardCodedText(readFileSync(file, 'utf8'), file)) offending.push(`${path.relative(REPO_ROOT, file)}:${hit.line}: ${JSON.stringify(hit.text)}`);
  }
  assert.deepEqual(offending, [], `text to move into the catalogues (ui/src/i18n/en/<area>.ts and zh-CN/<area>.ts) and show with t():\n${offending.join('\n')}`);
});

test('the Chinese catalogue translates every message and keeps its placeholders', () => {
  const english = en as Record<string, string>;
  const chinese = zh as Record<string, string>;
  const untranslated: string[] = [];
  const placeholders: string[] = [];
  const names = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
  for (const [key, value] of Object.entries(english)) {
    const translated = chinese[key];
    assert.equal(typeof translated, 'string', `zh-CN has ${key}`);
    if (translated === value && needsTranslation(value)) untranslated.push(`${key}: ${JSON.stringify(value)}`);
    if (names(translated!) !== names(value)) placeholders.push(`${key}: en {${names(value)}} zh-CN {${names(translated!)}}`);
  }
  assert.deepEqual(untranslated, [], `zh-CN messages that are the English text:\n${untranslated.join('\n')}`);
  assert.deepEqual(placeholders, [], `zh-CN messages whose placeholders differ from the English:\n${placeholders.join('\n')}`);
  assert.deepEqual(Object.keys(chinese).filter((key) => !(key in english)), [], 'zh-CN has no key English lacks');
});

test('a message made only of names and placeholders needs no translation; one with a word does', () => {
  for (const text of ['GiB', '{name}:{ref}', 'OpenID Connect', '{copied} / {skipped}']) assert.equal(needsTranslation(text), false, text);
  for (const text of ['Projects', 'Delete {name}', 'Docker Hub mirror', 'URL of the registry']) assert.equal(needsTranslation(text), true, text);
});
