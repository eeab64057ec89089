// The fixture every bench server starts with, through the public API like a person would:
// the admin signs in, enrolls a second factor and steps up (mandatory for admins, and
// granting roles needs a fresh one), creates project `fraud` and an `ml-engineer` bound to
// it, who signs in.
import { Client, expectOk, PASSWORD, stepUpWithNewTotp } from '../../test/helpers/server.ts';

export interface BenchFixture {
  admin: Client;
  /** The signed-in ml-engineer of project `fraud`. */
  eng: Client;
}

export async function engineerInFraud(url: string): Promise<BenchFixture> {
  const admin = new Client(url);
  await expectOk(await admin.login('admin'));
  await stepUpWithNewTotp(admin);
  await expectOk(await admin.post('/v1/projects', { name: 'fraud' }));
  await expectOk(await admin.post('/v1/admin/users', { username: 'ml-engineer', password: PASSWORD }));
  await expectOk(await admin.post('/v1/projects/fraud/bindings', { principal: 'user:ml-engineer', role: 'ml-engineer' }));
  const eng = new Client(url);
  await expectOk(await eng.login('ml-engineer'));
  return { admin, eng };
}
