import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lookupExecUser } from '../../src/fs/index.ts';

const files = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
  group: 'root:x:0:\nstaff:x:50:app,other\napp:x:1000:\nwheel:x:10:root\n',
};

test('RUN user as runc resolves it: names, numbers, groups, supplementary groups', () => {
  assert.deepEqual(lookupExecUser('app', files), { uid: 1000, gid: 1000, additionalGids: [50] });
  assert.deepEqual(lookupExecUser('1000', files), { uid: 1000, gid: 1000, additionalGids: [50] });
  assert.deepEqual(lookupExecUser('1234', files), { uid: 1234, gid: 0, additionalGids: [] }, 'a uid not in passwd runs with gid 0');
  assert.deepEqual(lookupExecUser('app:staff', files), { uid: 1000, gid: 50, additionalGids: [50] });
  assert.deepEqual(lookupExecUser('1234:99', files), { uid: 1234, gid: 99, additionalGids: [] });
  assert.throws(() => lookupExecUser('nobody', files), /unable to find user nobody/);
  assert.throws(() => lookupExecUser('app:nogroup', files), /unable to find group nogroup/);
});
