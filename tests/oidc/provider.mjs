// A real OpenID provider for the tests: the npm package oidc-provider on loopback.
// Usage: node provider.mjs PORT REDIRECT_URI [REDIRECT_URI...]
// One confidential client (infrastream-portal / its secret) and two people in different
// groups; the dev login page (devInteractions) accepts any password. The groups of a person
// can be changed while it runs: POST /test/groups/<id> with a JSON list (for role removal).
// Resolved from tests/npm, where dev.sh installs the test packages.
const { default: Provider } = await import(new URL('../npm/node_modules/oidc-provider/lib/index.js', import.meta.url));
import http from 'node:http';

const [port, ...redirects] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const groups = {
  ada: ['qa-engineers'],
  omar: ['sre-oncall'],
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'infrastream-portal',
    client_secret: 'portal-secret-for-tests',
    redirect_uris: redirects,
    grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
  },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  conformIdTokenClaims: false,
  ttl: { IdToken: 600, AccessToken: 600, Session: 600, Interaction: 600, Grant: 600 },
  async findAccount(ctx, id) {
    if (!(id in groups)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`,
                 groups: groups[id] };
      },
    };
  },
});
provider.proxy = false;

const callback = provider.callback();
http.createServer((req, res) => {
  const m = req.url.match(/^\/test\/groups\/(\w+)$/);
  if (m && req.method === 'POST') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { groups[m[1]] = JSON.parse(body); res.end('ok'); });
    return;
  }
  callback(req, res);
}).listen(Number(port), '127.0.0.1', () => { console.log(`listening ${issuer}`); });
