// The identity tables on both databases: group memberships replaced at a sign-in (a membership
// added by two sign-ins at once is one row), the union of a user's own and their groups' roles,
// and the claim that lets one replica at a time ask the identity source about a user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DIALECTS, withMetadataOn } from '../support/metadata.ts';

for (const dialect of DIALECTS) {
  test(`${dialect}: memberships, role union, and one claim per check`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      const user = await meta.users.createExternal({ username: 'alice', source: 'ldap', externalId: 'uid=alice,dc=x', isAdmin: false });
      const [devs, ops] = await meta.groups.upsert('ldap', [
        { externalId: 'cn=devs,dc=x', name: 'devs' },
        { externalId: 'cn=ops,dc=x', name: 'ops' },
      ]);
      // Two sign-ins at once add the same memberships: no error, one row each.
      const both = await Promise.all([meta.groups.setUserGroups(user.id, [devs!.id, ops!.id]), meta.groups.setUserGroups(user.id, [devs!.id, ops!.id])]);
      assert.ok(both.some((c) => c.added.length > 0));
      assert.deepEqual((await meta.groups.ofUser(user.id)).map((g) => g.name), ['devs', 'ops']);
      const change = await meta.groups.setUserGroups(user.id, [ops!.id]);
      assert.deepEqual([change.added.map((g) => g.name), change.removed.map((g) => g.name)], [[], ['devs']]);

      await meta.projects.create('team', {});
      const project = (await meta.projects.find('team'))!;
      await meta.members.setUser(project.id, user.id, 'guest');
      await meta.members.setGroup(project.id, ops!.id, 'developer');
      await meta.members.setGroup(project.id, devs!.id, 'maintainer'); // alice left devs: not hers
      assert.deepEqual((await meta.members.rolesOf(project.id, user.id)).sort(), ['developer', 'guest']);
      assert.deepEqual(await meta.members.projectsOf(user.id), [project.id]);

      // The claim: of two replicas that read the same sync time, one asks the source.
      const seen = (await meta.users.find('alice'))!.groups_synced_at;
      const claims = await Promise.all([meta.users.claimResync(user.id, seen === null ? null : Number(seen), 1000), meta.users.claimResync(user.id, seen === null ? null : Number(seen), 1001)]);
      assert.deepEqual(claims.filter(Boolean).length, 1);
      const claimedAt = Number((await meta.users.find('alice'))!.groups_synced_at);
      await meta.users.releaseResync(user.id, claimedAt, null);
      assert.equal((await meta.users.find('alice'))!.groups_synced_at, null, 'given back when the source did not answer');
    });
  });
}
