// Sign-in: paste a token (`npx taskwire token --user you [--admin]`), or open the link that
// `npm start` prints (`/dashboard#token=...`), which signs in without this form.
import { useState } from 'preact/hooks';
import { type Session, signIn } from '../auth.ts';

export function SignIn({ onSignIn, notice }: { onSignIn: (s: Session) => void; notice: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    const session = signIn(token);
    if (session) onSignIn(session);
    else setError('That is not a taskwire token (a JWT with a user id).');
  };
  return (
    <main class="sign-in">
      <h1>taskwire</h1>
      {notice && <p class="error">{notice}</p>}
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <textarea
          id="token"
          data-field="token"
          rows={4}
          placeholder="eyJhbGciOiJIUzI1NiIs..."
          value={token}
          onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)}
        />
        <button type="submit" data-action="sign-in">
          Sign in
        </button>
        {error && <p class="error">{error}</p>}
      </form>
      <p class="muted">
        Mint one with <code>npx taskwire token --user you</code> (add <code>--admin</code> to see every user's
        tasks), or open the dashboard link that <code>npm start</code> prints. The token stays in this tab
        only.
      </p>
    </main>
  );
}
