// The console's frame: sign-in with a pasted token, the signed-in bar (who, role, expiry), the
// navigation, and the screen the hash names. A screen that throws shows its error, not a blank page.
import { Component, useEffect, useState } from 'react';
import type { FormEvent, ReactNode } from 'react';
import { ErrorBox, IdentityContext, link, useRoute } from './common';
import { ReportScreen } from './Report';
import { AuditScreen, ScheduleScreen } from './Lists';
import { SpeakerScreen, SpeakersScreen } from './Speakers';
import { SessionScreen, StartScreen } from './Verify';
import { describeExpiry, isLead, readToken } from './token';
import type { Identity } from './token';

const STORAGE = 'sbm-console-token';

class Boundary extends Component<{ children: ReactNode; reset: unknown }, { error: unknown }> {
  state = { error: null as unknown };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  componentDidUpdate(prev: { reset: unknown }) {
    if (prev.reset !== this.props.reset && this.state.error) this.setState({ error: null });
  }
  render() {
    return this.state.error ? <ErrorBox error={this.state.error} /> : this.props.children;
  }
}

function SignIn({ onSignIn, notice }: { onSignIn: (who: Identity) => void; notice: string }) {
  const [raw, setRaw] = useState('');
  const [error, setError] = useState<unknown>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    try {
      const who = readToken(raw);
      if (who.expiresAt && who.expiresAt <= Date.now()) throw new Error(`this token ${describeExpiry(who.expiresAt, Date.now())}`);
      onSignIn(who);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <main className="signin">
      <h1>SBM QA console</h1>
      {notice && <p className="warning" role="status">{notice}</p>}
      <form className="form card" onSubmit={submit}>
        <label>
          Access token
          <textarea name="token" value={raw} onChange={(e) => setRaw(e.target.value)} rows={5} required
                    placeholder="Paste the JWT from your identity provider, or from `sbm token issue`" />
        </label>
        <div className="buttons"><button type="submit">Sign in</button></div>
        <ErrorBox error={error} />
      </form>
      <p className="small muted">The token stays in this browser tab only and is sent to this node alone.</p>
    </main>
  );
}

function Screen({ who }: { who: Identity }) {
  const { parts, query } = useRoute();
  const q = (name: string) => query.get(name) ?? '';
  const [head, id] = parts;
  switch (head ?? 'speakers') {
    case 'speakers':
      return id ? <SpeakerScreen id={id} /> : <SpeakersScreen bucket={q('bucket')} cursor={q('cursor')} />;
    case 'report':
      return <ReportScreen speaker={q('speaker')} client={q('client')} job={q('job')} original={q('original')} corrected={q('corrected')} />;
    case 'verify':
      return <StartScreen speaker={q('speaker')} />;
    case 'sessions':
      return id ? <SessionScreen id={id} /> : <StartScreen speaker="" />;
    case 'schedule':
      return <ScheduleScreen priority={q('priority')} />;
    case 'audit':
      return isLead(who) ? <AuditScreen query={query} /> : <p className="muted">The audit log is for QA leads.</p>;
    default:
      return <p className="muted">Nothing here. <a href={link('speakers')}>Speakers</a></p>;
  }
}

export function App() {
  const [who, setWho] = useState<Identity | null>(() => {
    const saved = sessionStorage.getItem(STORAGE);
    if (!saved) return null;
    try {
      const w = readToken(saved);
      return w.expiresAt && w.expiresAt <= Date.now() ? null : w;
    } catch {
      return null;
    }
  });
  const [notice, setNotice] = useState('');
  const [now, setNow] = useState(Date.now());
  const route = useRoute();
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15000);
    return () => clearInterval(t);
  }, []);
  const signOut = (why = '') => {
    sessionStorage.removeItem(STORAGE);
    setWho(null);
    setNotice(why);
  };
  useEffect(() => {
    if (who?.expiresAt && who.expiresAt <= now) signOut('Your token expired: paste a new one to go on.');
  }, [who, now]);
  if (!who)
    return <SignIn notice={notice} onSignIn={(w) => { sessionStorage.setItem(STORAGE, w.token); setNotice(''); setWho(w); }} />;
  const nav = [
    ['speakers', 'Speakers'],
    ['schedule', 'Queue'],
    ['verify', 'Verify'],
    ['report', 'Report'],
    ...(isLead(who) ? [['audit', 'Audit']] : []),
  ];
  const current = route.parts[0] === 'sessions' ? 'verify' : route.parts[0] ?? 'speakers';
  return (
    <IdentityContext.Provider value={who}>
      <header className="top">
        <div className="brand">SBM QA</div>
        <div className="who" data-testid="who">
          <span>{who.subject || who.serviceId || 'unknown'}</span>{' '}
          <span className="badge">{who.role || (who.serviceId ? 'service' : 'no role')}</span>{' '}
          <span className="small muted" data-testid="expiry">{describeExpiry(who.expiresAt, now)}</span>
        </div>
        <button type="button" className="secondary small-button" onClick={() => signOut()}>Sign out</button>
      </header>
      <nav className="main-nav" aria-label="Screens">
        {nav.map(([path, label]) => (
          <a key={path} href={link(path)} className={current === path ? 'active' : ''} aria-current={current === path ? 'page' : undefined}>{label}</a>
        ))}
      </nav>
      <main className="content">
        <Boundary reset={window.location.hash}>
          <Screen who={who} />
        </Boundary>
      </main>
    </IdentityContext.Provider>
  );
}
