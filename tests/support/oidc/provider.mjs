// A throwaway OpenID Connect provider for the SSO tests: node-oidc-provider (OpenID Certified), on
// 127.0.0.1, with one confidential client and the people given in HS_OIDC_PEOPLE (a JSON object of
// login -> {email, email_verified}). Its development login and consent pages stand for a real
// identity provider's: any login named in the people signs in (the password is not checked).
// Its end-session endpoint (RP-initiated logout) sends people back to HS_OIDC_POST_LOGOUT_URI.
// Prints "ready <issuer>" once it listens.
import Provider from "oidc-provider";

const port = Number(process.env.HS_OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const people = JSON.parse(process.env.HS_OIDC_PEOPLE || "{}");

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.HS_OIDC_CLIENT_ID,
    client_secret: process.env.HS_OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.HS_OIDC_REDIRECT_URI],
    // Where the app may send people back after ending their session here (RP-initiated logout).
    post_logout_redirect_uris: process.env.HS_OIDC_POST_LOGOUT_URI ? [process.env.HS_OIDC_POST_LOGOUT_URI] : [],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) { return undefined; }
    return { accountId: id, async claims() { return { sub: id, ...person }; } };
  },
  cookies: { keys: ["throwaway-test-key"] },
  features: { devInteractions: { enabled: true } },
});
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => { console.log(`ready ${issuer}`); });
