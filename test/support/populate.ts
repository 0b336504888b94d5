// A registry with something of everything in it, filled over HTTP as clients would, and a check that
// another registry (the same one moved, restored, migrated…) serves all of it byte for byte.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, basic, expectStatus } from './api.ts';
import { digestOf, indexManifest, MEDIA, manifestBytes, pushBlob, pushImage, pushManifest, randomBlob, type PushedImage } from './oci.ts';

/** What {@link populate} put in the registry, to check another one against. */
export interface Content {
  /** Every manifest pushed: repository, a tag naming it (or undefined when pushed by digest only), its bytes. */
  manifests: { name: string; tag: string | undefined; digest: string; bytes: Buffer }[];
  /** Every blob and the repository to pull it from, with its bytes. */
  blobs: { name: string; digest: string; bytes: Buffer }[];
  /** The tags of each repository, sorted. */
  tags: Map<string, string[]>;
  /** A project with a quota, its name, and its usage as the registry reported it. */
  project: { name: string; quotaBytes: number; usageBytes: number };
  user: { name: string; password: string; token: string };
  robot: { name: string; secret: string };
}

export interface PopulateOptions {
  /** Images to push (each with distinct random layers). */
  images: number;
  /** `Authorization` of an administrator. */
  auth: string;
}

/**
 * Fills the registry at `url`: a project with a quota, a user who is its developer and has a
 * personal access token, a project robot, `images` images spread over a few repositories (some
 * Docker, some OCI; every fifth also holds a layer shared by all of them; a few tags moved onto
 * later images), multi-arch indexes over pairs of them, and one blob pushed with no manifest.
 */
export async function populate(url: string, options: PopulateOptions): Promise<Content> {
  const auth = options.auth;
  const project = { name: 'team', quotaBytes: 64 * 1024 * 1024 };
  await expectStatus(await api(url, 'POST', '/projects', { auth, body: { name: project.name, quotaBytes: project.quotaBytes } }), 201, 'create project');
  const user = { name: 'dev', password: `pw-${randomBytes(9).toString('base64url')}`, token: '' };
  await expectStatus(await api(url, 'POST', '/users', { auth, body: { username: user.name, password: user.password } }), 201, 'create user');
  await expectStatus(await api(url, 'POST', `/projects/${project.name}/members`, { auth, body: { username: user.name, role: 'developer' } }), 201, 'add member');
  const token = await expectStatus<{ token: string }>(await api(url, 'POST', '/users/me/tokens', { auth: basic(user.name, user.password), body: { name: 'ci' } }), 201, 'create token');
  user.token = token.token;
  const created = await expectStatus<{ name: string; secret: string }>(
    await api(url, 'POST', '/robots', { auth, body: { name: 'builder', project: project.name, permissions: [{ project: project.name, actions: ['pull', 'push'] }] } }),
    201,
    'create robot',
  );
  const robot = { name: created.name, secret: created.secret };

  const content: Content = { manifests: [], blobs: [], tags: new Map(), project: { ...project, usageBytes: 0 }, user, robot };
  const shared = randomBlob(512);
  const repos = ['team/app', 'team/web', 'team/tools/cli', 'base', 'other/lib'];
  const images: PushedImage[] = [];
  for (let i = 0; i < options.images; i++) {
    const name = repos[i % repos.length]!;
    const tag = `v${i}`;
    const image = await pushImage(url, name, tag, { auth, docker: i % 3 === 0, layerCount: 1 + (i % 2) });
    images.push(image);
    content.manifests.push({ name, tag, digest: image.digest, bytes: image.bytes });
    content.blobs.push({ name, digest: image.config.digest, bytes: Buffer.alloc(0) }); // config bytes: checked by digest only
    image.layers.forEach((l, n) => content.blobs.push({ name, digest: l.digest, bytes: image.layerBytes[n]! }));
    addTag(content, name, tag);
    if (i % 5 === 0) {
      // A layer every such image shares: stored once, linked to several repositories.
      await pushBlob(url, name, shared, { auth });
      content.blobs.push({ name, digest: digestOf(shared), bytes: shared });
    }
  }
  // Tags moved onto later images: the moved registry must know where they point now.
  for (const [from, to] of [[0, 5], [1, 6]] as const) {
    const image = images[to]!;
    await pushManifest(url, image.name, `v${from}`, image.bytes, image.mediaType, auth);
    const entry = content.manifests.find((m) => m.name === image.name && m.tag === `v${from}`)!;
    // The image it named stays, untagged: pulled by digest.
    content.manifests.push({ ...entry, tag: undefined });
    Object.assign(entry, { digest: image.digest, bytes: image.bytes });
  }
  // Multi-arch indexes over pairs of images of one repository.
  for (let i = 0; i + repos.length < Math.min(images.length, 4 * repos.length); i += repos.length + 1) {
    const [a, b] = [images[i]!, images[i + repos.length]!];
    const platforms = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }];
    const bytes = manifestBytes(indexManifest({ manifests: [a, b].map((img, n) => ({ ...img.descriptor, platform: platforms[n]! })) }));
    const digest = await pushManifest(url, a.name, `multi${i}`, bytes, MEDIA.ociIndex, auth);
    content.manifests.push({ name: a.name, tag: `multi${i}`, digest, bytes });
    addTag(content, a.name, `multi${i}`);
  }
  // A blob uploaded into the project with no manifest yet (a push in progress): counted in its usage.
  const loose = randomBlob(300);
  await pushBlob(url, 'team/app', loose, { auth });
  content.blobs.push({ name: 'team/app', digest: digestOf(loose), bytes: loose });
  // A manifest pushed by digest only.
  const untagged = await pushImage(url, 'team/web', undefined, { auth });
  content.manifests.push({ name: 'team/web', tag: undefined, digest: untagged.digest, bytes: untagged.bytes });
  content.blobs.push({ name: 'team/web', digest: untagged.layers[0]!.digest, bytes: untagged.layerBytes[0]! });

  content.project.usageBytes = (await expectStatus<{ usageBytes: number }>(await api(url, 'GET', `/projects/${project.name}`, { auth }), 200)).usageBytes;
  return content;
}

function addTag(content: Content, name: string, tag: string): void {
  const tags = content.tags.get(name) ?? [];
  if (!tags.includes(tag)) tags.push(tag);
  content.tags.set(name, tags.sort());
}

async function get(url: string, path: string, auth: string, accept = '*/*'): Promise<{ status: number; body: Buffer; digest: string | null }> {
  const res = await fetch(`${url}${path}`, { headers: { Authorization: auth, Accept: accept } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), digest: res.headers.get('docker-content-digest') };
}

const ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ');

/**
 * Asserts that the registry at `url` serves everything of `content`: each manifest by tag and by
 * digest with identical bytes, each blob with bytes of its digest, each repository's tags, the
 * project's usage; and that the user (password and token) and the robot can still sign in.
 */
export async function assertServes(url: string, content: Content, auth: string): Promise<void> {
  for (const m of content.manifests) {
    for (const ref of [m.tag, m.digest]) {
      if (ref === undefined) continue;
      const res = await get(url, `/v2/${m.name}/manifests/${ref}`, auth, ACCEPT);
      assert.equal(res.status, 200, `${m.name}:${ref}`);
      assert.equal(digestOf(res.body), m.digest, `${m.name}:${ref}: manifest bytes identical`);
      assert.ok(res.body.equals(m.bytes), `${m.name}:${ref}: manifest bytes identical`);
    }
  }
  for (const b of content.blobs) {
    const res = await get(url, `/v2/${b.name}/blobs/${b.digest}`, auth);
    assert.equal(res.status, 200, `${b.name} blob ${b.digest}`);
    assert.equal(digestOf(res.body), b.digest, `${b.name} blob ${b.digest}: bytes of its digest`);
    if (b.bytes.length > 0) assert.ok(res.body.equals(b.bytes));
  }
  for (const [name, tags] of content.tags) {
    const res = await get(url, `/v2/${name}/tags/list?n=1000`, auth);
    assert.equal(res.status, 200, `tags of ${name}`);
    assert.deepEqual((JSON.parse(res.body.toString()) as { tags: string[] }).tags.sort(), tags, `tags of ${name}`);
  }
  const project = await expectStatus<{ usageBytes: number; quotaBytes: number }>(await api(url, 'GET', `/projects/${content.project.name}`, { auth }), 200);
  assert.equal(project.usageBytes, content.project.usageBytes, 'project usage unchanged');
  assert.equal(project.quotaBytes, content.project.quotaBytes, 'project quota unchanged');
  for (const [who, secret] of [[content.user.name, content.user.password], [content.user.name, content.user.token], [content.robot.name, content.robot.secret]] as const) {
    const res = await api(url, 'GET', '/auth/whoami', { auth: basic(who, secret) });
    await res.arrayBuffer();
    assert.equal(res.status, 200, `${who} signs in`);
  }
  // New rows get fresh ids (sequences moved past the copied ones): a user, a repository, a push.
  await expectStatus(await api(url, 'POST', '/users', { auth, body: { username: `after-${randomBytes(3).toString('hex')}`, password: randomBytes(12).toString('base64url') } }), 201, 'create a user after the move');
  // The robot can still pull and push in its project.
  const robotAuth = basic(content.robot.name, content.robot.secret);
  const pushed = await pushImage(url, `${content.project.name}/after-move`, 'latest', { auth: robotAuth });
  const res = await get(url, `/v2/${pushed.name}/manifests/latest`, robotAuth, ACCEPT);
  assert.equal(res.status, 200, 'the robot pushes and pulls after the move');
}
