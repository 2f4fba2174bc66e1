// The README's openid-client snippet, verbatim, run against Latch.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as openidClient from 'openid-client'
import { issuer, registerClient, signIn } from './latch.js'

// The snippet's `client`, except that discovery accepts the test issuer's
// http (production issuers are https).
const client = {
  ...openidClient,
  discovery: (server, id, meta, auth) => openidClient.discovery(server, id, meta, auth, { execute: [openidClient.allowInsecureRequests] })
}

test('README openid-client snippet', async () => {
  const redirectUri = 'https://rp.example/callback'
  const registered = await registerClient({ client_name: 'readme', redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'] })
  const clientId = registered.client_id
  const clientSecret = registered.client_secret
  const login = async (authorizationUrl) => signIn(authorizationUrl, { user: 'user-1', claims: { email: 'ann@example.com' } })

  // --- README snippet (openid-client) starts ---
  const config = await client.discovery(new URL(issuer), clientId, {}, client.ClientSecretPost(clientSecret))
  // on /login: PKCE instead of state, openid-client's default
  const codeVerifier = client.randomPKCECodeVerifier()
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256'
  })
  const currentUrl = await login(authorizationUrl) // (the test's browser and host app)
  // on /callback (currentUrl is the full callback URL, with code and iss)
  const tokens = await client.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: codeVerifier, idTokenExpected: true })
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  // --- README snippet (openid-client) ends ---

  assert.equal(tokens.claims().sub, 'user-1')
  assert.equal(userinfo.email, 'ann@example.com')
  assert.ok(refreshed.access_token)
})
