// The test OpenID provider's process (started by oidc-provider.ts): the certified `oidc-provider`
// package with test users, minimal login/consent pages of our own (the built-in development pages
// are off), the device flow, and two test-only endpoints under /__test/ (guarded by a token):
// `POST /__test/control` sets the ID-token tamper mode or the device code lifetime at runtime,
// `GET /__test/stats` counts requests per endpoint (JWKS fetches, token requests…).
// Usage: node --import tsx oidc-provider-main.ts OPTIONS.json
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { CompactSign, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { ProviderProcessOptions, TamperMode } from './oidc-provider.ts';

// oidc-provider ships no types: the little of its API used here, declared locally.
interface Ctx {
  path: string;
  status: number;
  body: unknown;
  type: string;
  oidc: { session?: { state?: Record<string, unknown> }; urlFor(name: string): string };
}
interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId: string };
  grantId?: string;
}
interface ProviderInstance {
  use(middleware: (ctx: Ctx, next: () => Promise<void>) => Promise<void>): void;
  callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, options: { mergeWithLastSubmission: boolean }): Promise<void>;
  Grant: { new (init: { accountId: string; clientId: string }): Grant; find(id: string): Promise<Grant | undefined> };
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;
const { default: Provider } = (await import('oidc-provider' as string)) as { default: ProviderConstructor };

const options = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ProviderProcessOptions;
const issuer = `http://127.0.0.1:${options.port}`;
let tamper: TamperMode | undefined = options.tamper;
let deviceCodeTTL = options.deviceCodeTTL ?? 600;
const stats: Record<string, number> = {};

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title: string, body: string) =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;

const provider = new Provider(issuer, {
  clients: options.clients.map((c) => ({
    client_id: c.clientId,
    ...(c.clientSecret ? { client_secret: c.clientSecret, token_endpoint_auth_method: 'client_secret_basic' } : { token_endpoint_auth_method: 'none' }),
    redirect_uris: c.redirectUris,
    grant_types: c.grantTypes ?? ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
  })),
  jwks: { keys: options.keys },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  // A refresh token for every client allowed the grant (as Keycloak does), offline_access or not:
  // Berth uses it to ask whether the person is still accepted.
  issueRefreshToken: async (_ctx: Ctx, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token'),
  conformIdTokenClaims: options.conformIdTokenClaims ?? false,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  ttl: { DeviceCode: () => deviceCodeTTL },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: (ctx: Ctx, form: string, _out: unknown, err?: Error) => {
        const error = err ? `<p class="error">${err.name === 'AbortedError' ? 'The sign-in was denied.' : 'That code was not accepted.'}</p>` : '';
        ctx.body = page('Enter your code', `${error}${form}<button form="op.deviceInputForm" type="submit">Continue</button>`);
      },
      userCodeConfirmSource: (ctx: Ctx, _form: string, client: { clientId: string }, _info: unknown, userCode: string) => {
        const secret = escape(String(ctx.oidc.session?.state?.['secret'] ?? ''));
        ctx.body = page(
          'Confirm the device',
          `<p>${escape(String(client.clientId))} asks to sign in with code ${escape(userCode)}.</p>` +
            `<form method="post" action="${escape(ctx.oidc.urlFor('code_verification'))}"><input type="hidden" name="xsrf" value="${secret}">` +
            `<input type="hidden" name="user_code" value="${escape(userCode)}">` +
            `<button type="submit" name="confirm" value="yes">Allow</button><button type="submit" name="abort" value="yes">Deny</button></form>`,
        );
      },
      successSource: (ctx: Ctx) => {
        ctx.body = page('Signed in', '<p id="done">The device is signed in; you may close this window.</p>');
      },
    },
  },
  interactions: { url: (_ctx: Ctx, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
  findAccount: (_ctx: Ctx, sub: string) => {
    const user = options.users.find((u) => u.sub === sub);
    if (!user) return undefined;
    return { accountId: sub, claims: () => ({ ...user.claims, sub }) };
  },
  renderError: (ctx: Ctx, out: Record<string, unknown>) => {
    ctx.type = 'html';
    ctx.body = page('Error', `<p id="error">${escape(String(out['error']))}: ${escape(String(out['error_description'] ?? ''))}</p>`);
  },
});

const foreign = await generateKeyPair('RS256', { extractable: true });
const foreignJwk: JWK = { ...(await exportJWK(foreign.privateKey)), kid: `foreign-${randomBytes(4).toString('hex')}`, alg: 'RS256' };

/** Rewrites an ID token the way the test asked for. */
async function tamperWith(idToken: string, mode: TamperMode): Promise<string> {
  const [headerPart, payloadPart, signature] = idToken.split('.') as [string, string, string];
  const header = decodeProtectedHeader(idToken);
  const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  const resign = async (jwk: JWK, claims: Record<string, unknown>) =>
    new CompactSign(Buffer.from(JSON.stringify(claims)))
      .setProtectedHeader({ alg: header.alg!, typ: header.typ, kid: jwk.kid })
      .sign(await importJWK(jwk, header.alg));
  const own = options.keys.find((k) => k.kid === header.kid) ?? options.keys[0]!;
  switch (mode) {
    case 'expired':
      return resign(own, { ...payload, iat: now - 7200, exp: now - 3600 });
    case 'wrong-audience':
      return resign(own, { ...payload, aud: 'someone-else' });
    case 'wrong-nonce':
      return resign(own, { ...payload, nonce: 'not-the-nonce' });
    case 'bad-signature':
      return `${headerPart}.${Buffer.from(JSON.stringify({ ...payload, groups: ['admins'] })).toString('base64url')}.${signature}`;
    case 'foreign-key':
      return resign(foreignJwk, payload);
  }
}

provider.use(async (ctx, next) => {
  stats[ctx.path] = (stats[ctx.path] ?? 0) + 1;
  await next();
  const body = ctx.body as Record<string, unknown> | undefined;
  if (tamper && ctx.path === '/token' && ctx.status === 200 && body && typeof body['id_token'] === 'string') {
    body['id_token'] = await tamperWith(body['id_token'], tamper);
  }
});

function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) req.destroy(new Error('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function loginForm(uid: string, error?: string): string {
  return page(
    'Sign in',
    `${error ? `<p class="error">${escape(error)}</p>` : ''}<form method="post" action="/interaction/${escape(uid)}/login">` +
      `<label>Login <input type="text" name="login" autofocus></label><label>Password <input type="password" name="password"></label>` +
      `<button type="submit" name="submit" value="login">Sign in</button><button type="submit" name="abort" value="yes">Cancel</button></form>`,
  );
}

async function interaction(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const uid = details.uid;
  if (req.method === 'POST' && url.pathname === `/interaction/${uid}/login`) {
    const form = new URLSearchParams(await readBody(req));
    if (form.get('abort')) {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
      return;
    }
    const user = options.users.find((u) => u.login === form.get('login') && u.password === form.get('password'));
    if (!user) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginForm(uid, 'Wrong login or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (details.prompt.name === 'login') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginForm(uid));
    return;
  }
  // Consent: granted at once for whatever the client asked for.
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  const grant = details.grantId
    ? (await provider.Grant.find(details.grantId))!
    : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params['client_id'] as string });
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function control(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  if (req.headers['x-control-token'] !== options.controlToken) {
    res.writeHead(403).end();
    return;
  }
  if (url.pathname === '/__test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  if (url.pathname === '/__test/control' && req.method === 'POST') {
    // The test's own people may be many and large (a user with 10,000 groups).
    const body = JSON.parse(await readBody(req, 8 * 1024 * 1024)) as { tamper?: TamperMode | null; deviceCodeTTL?: number; users?: ProviderProcessOptions['users'] };
    if ('tamper' in body) tamper = body.tamper ?? undefined;
    // The people and their claims from now on (findAccount reads them at every grant, refreshes included).
    if (Array.isArray(body.users)) options.users = body.users;
    if (typeof body.deviceCodeTTL === 'number') deviceCodeTTL = body.deviceCodeTTL;
    res.writeHead(204).end();
    return;
  }
  res.writeHead(404).end();
}

const handle = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', issuer);
  const route = url.pathname.startsWith('/__test/') ? control : url.pathname.startsWith('/interaction/') ? interaction : undefined;
  if (!route) {
    handle(req, res);
    return;
  }
  route(req, res, url).catch((error: unknown) => {
    console.error('interaction failed', error);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('interaction failed');
  });
});
server.listen(options.port, '127.0.0.1', () => console.log(`oidc provider listening on ${issuer}`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
