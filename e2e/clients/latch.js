// Helpers that play the browser and the host app around a running Latch.
// The relying-party side of every test is openid-client itself.

export const issuer = process.env.LATCH_E2E_ISSUER
export const apiKey = process.env.LATCH_E2E_API_KEY
if (!issuer || !apiKey) {
  throw new Error('LATCH_E2E_ISSUER and LATCH_E2E_API_KEY must be set (run through TestNodeOpenIDClient)')
}

// api calls the host app's management API.
export async function api (method, path, body) {
  const res = await fetch(issuer + path, {
    method,
    headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : {} }
}

// registerClient registers a client as the host app does.
export async function registerClient (metadata) {
  const { status, body } = await api('POST', '/api/clients', metadata)
  if (status !== 201) throw new Error(`register client: ${status} ${JSON.stringify(body)}`)
  return body
}

// Browser is a user agent with a cookie jar that stops at every redirect.
export class Browser {
  constructor () { this.cookies = new Map() }
  async get (url) {
    const headers = {}
    if (this.cookies.size) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(url, { redirect: 'manual', headers })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const i = pair.indexOf('=')
      this.cookies.set(pair.slice(0, i), pair.slice(i + 1))
    }
    return res
  }
}

// signIn runs the user's part of an authorization request: the browser
// goes to Latch, the host app approves, the browser returns to Latch and
// is sent to the client's redirect URI, which is returned.
export async function signIn (authorizationUrl, approval = { user: 'user-1' }) {
  const browser = new Browser()
  let res = await browser.get(authorizationUrl)
  if (res.status !== 303) throw new Error(`authorize: ${res.status} ${await res.text()}`)
  const session = new URL(res.headers.get('location')).searchParams.get('token')
  const { status, body } = await api('POST', `/api/auth_session/${session}/approve`, approval)
  if (status !== 200) throw new Error(`approve: ${status} ${JSON.stringify(body)}`)
  res = await browser.get(body.redirect_uri)
  if (res.status !== 303) throw new Error(`resume: ${res.status} ${await res.text()}`)
  return new URL(res.headers.get('location'))
}
