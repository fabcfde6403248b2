// The console's page, style and script: our own, embedded in the binary (no packages, no
// CDN, no build step). Edit them here; ConsoleTests checks each stays under 100 KB.
enum ConsoleAssets {
    static let page = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <title>happyrelay console</title>
    <link rel="stylesheet" href="/admin/console.css">
    <script src="/admin/console.js" defer></script>
    </head>
    <body>
    <a class="skip" href="#main">Skip to content</a>
    <header>
    <span class="brand">happyrelay</span>
    <nav id="nav" aria-label="Console"></nav>
    <div id="tools"></div>
    </header>
    <div id="message" class="message" role="status" aria-live="polite"></div>
    <main id="main" tabindex="-1"><noscript>The console needs JavaScript.</noscript></main>
    </body>
    </html>
    """#

    static let style = #"""
    :root { --ink: #1d2330; --muted: #5b6478; --line: #d9dee8; --paper: #f6f7fb; --card: #fff; --accent: #1f5fd1; --bad: #b3261e; --good: #1b7f3b; font-family: system-ui, -apple-system, "Apple SD Gothic Neo", "Noto Sans KR", sans-serif; color: var(--ink); background: var(--paper); }
    * { box-sizing: border-box; }
    body { margin: 0; line-height: 1.45; }
    header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .6rem 1rem; background: var(--ink); color: #fff; }
    .brand { font-weight: 700; letter-spacing: .02em; }
    nav { display: flex; flex-wrap: wrap; gap: .25rem; flex: 1; }
    nav a { color: #dfe6f5; text-decoration: none; padding: .3rem .6rem; border-radius: .3rem; }
    nav a[aria-current="page"], nav a:hover { background: #36405a; color: #fff; }
    #tools { display: flex; gap: .4rem; }
    main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
    h1 { font-size: 1.4rem; margin: .4rem 0 1rem; }
    h2 { font-size: 1.05rem; margin: 0 0 .6rem; }
    a { color: var(--accent); }
    :focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
    .skip { position: absolute; left: -999px; }
    .skip:focus { left: .5rem; top: .5rem; background: #fff; padding: .3rem .6rem; z-index: 2; }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; margin-bottom: 1rem; }
    .narrow { max-width: 24rem; margin: 2rem auto; display: grid; gap: .5rem; }
    .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .75rem; margin-bottom: 1rem; }
    .stat span { display: block; color: var(--muted); font-size: .85rem; }
    .stat strong { font-size: 1.6rem; }
    .scroll { overflow-x: auto; }
    table { border-collapse: collapse; width: 100%; font-size: .92rem; }
    th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
    td.number { text-align: right; font-variant-numeric: tabular-nums; }
    tr.state-dead td:nth-child(2) { color: var(--bad); font-weight: 600; }
    tr.state-delivered td:nth-child(2) { color: var(--good); }
    .filters { display: flex; flex-wrap: wrap; align-items: end; gap: .5rem .75rem; }
    .filters label { font-size: .85rem; color: var(--muted); }
    label { font-weight: 600; }
    input, select, textarea, button { font: inherit; }
    input, select, textarea { padding: .35rem .5rem; border: 1px solid #aab3c5; border-radius: .3rem; background: #fff; color: var(--ink); max-width: 100%; }
    textarea { width: 100%; font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .88rem; }
    form.card:not(.filters):not(.narrow) { display: grid; gap: .4rem; }
    button { padding: .4rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: .3rem; cursor: pointer; }
    button[disabled] { opacity: .45; cursor: not-allowed; }
    button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
    header button { background: transparent; border-color: #8c97b0; }
    .actions { display: flex; flex-wrap: wrap; gap: .5rem; margin-bottom: 1rem; }
    .facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
    .facts dt { color: var(--muted); }
    .facts dd { margin: 0; overflow-wrap: anywhere; }
    pre { background: #f1f3f8; padding: .75rem; border-radius: .3rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; margin: 0; }
    .message { max-width: 72rem; margin: .5rem auto 0; padding: 0 1rem; min-height: 1.2rem; color: var(--good); }
    .message.error, .error { color: var(--bad); }
    .hint, .empty { color: var(--muted); }
    .badge { display: inline-block; padding: .15rem .55rem; border-radius: 1rem; font-weight: 600; background: #e7ecf7; }
    .badge.call { background: #dcf2e3; color: var(--good); }
    .badge.invalid { background: #fbe3e1; color: var(--bad); }
    figure { margin: 0; }
    figcaption { color: var(--muted); font-size: .85rem; }
    svg { width: 100%; height: 8rem; background: #fbfcfe; border: 1px solid var(--line); border-radius: .3rem; }
    .series { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
    .legend { list-style: none; padding: 0; margin: .4rem 0 0; display: flex; flex-wrap: wrap; gap: .3rem 1rem; font-size: .85rem; }
    .legend li::before { content: "■ "; }
    .s0 { stroke: #1f5fd1; color: #1f5fd1; } .s1 { stroke: #d1461f; color: #d1461f; } .s2 { stroke: #1b7f3b; color: #1b7f3b; }
    .s3 { stroke: #8a3ffc; color: #8a3ffc; } .s4 { stroke: #b28600; color: #b28600; } .s5 { stroke: #007d79; color: #007d79; }
    @media (max-width: 40rem) { main { padding: .5rem; } .facts { grid-template-columns: 1fr; } header { padding: .5rem; } }
    """#

    static let script = #"""
    'use strict';
    // happyrelay console: one page, no dependencies. Text is always set as text (never as HTML),
    // and the admin token is only ever sent to POST /admin/session, never kept.
    const T = {
      en: {
        title: 'happyrelay console', signIn: 'Sign in', signOut: 'Sign out', token: 'Admin token',
        signInHelp: 'The value of HAPPYRELAY_ADMIN_TOKEN on the relay.', wrongToken: 'That token is not right.',
        tooMany: 'Too many wrong tokens. Try again later.', overview: 'Overview', deliveries: 'Deliveries', bindings: 'Bindings',
        tester: 'Mapping tester', mappings: 'Mappings', pending: 'Pending', oldest: 'Oldest pending', dead: 'Dead letters',
        generation: 'Mappings generation', webhooks: 'Webhooks by route and outcome', sends: 'Sends to HappyTalk', route: 'Route',
        outcome: 'Outcome', result: 'Result', code: 'Code', count: 'Count', mode: 'Mode', chart: 'Webhooks per 10 s, last 5 minutes',
        noTraffic: 'No webhooks yet.', state: 'State', any: 'Any', room: 'Room', since: 'Since', search: 'Search', more: 'More',
        id: 'ID', attempts: 'Attempts', lastReason: 'Last reason', accepted: 'Accepted', none: 'Nothing here.', request: 'Request (as stored; secrets are never stored)',
        call: 'Call to HappyTalk (the token is added when sent)', noCall: 'None: the mapping failed.', history: 'Attempts',
        at: 'Time', http: 'HTTP', message: 'Message', replay: 'Replay', resend: 'Resend as stored', retry: 'Retry now', remove: 'Delete',
        confirmDelete: 'Delete this delivery for good?', done: 'Done.', back: 'Back to deliveries', nextTry: 'Next try', finished: 'Finished',
        kind: 'Kind', value: 'Value', uuid: 'uuid', expires: 'Expires', headers: 'Headers (Name: value, one per line)', body: 'Payload',
        test: 'Test', testHelp: 'Runs the loaded mapping on this payload. Nothing is sent or stored.', reload: 'Reload mappings',
        folder: 'Folder', file: 'File', delivery: 'Delivery', scheme: 'Verification', lastReload: 'Last reload', noReload: 'Not reloaded since start.',
        errors: 'Errors', loading: 'Loading…', failed: 'The relay answered', language: '한국어', h1: '1 hour', h24: '24 hours', d7: '7 days',
        all: 'All', signedOut: 'Signed out.', call_: 'Makes a call', ignored: 'Ignored', invalid: 'Invalid', trigger: 'Trigger',
      },
      ko: {
        title: 'happyrelay 콘솔', signIn: '로그인', signOut: '로그아웃', token: '관리자 토큰',
        signInHelp: '릴레이에 설정한 HAPPYRELAY_ADMIN_TOKEN 값입니다.', wrongToken: '토큰이 올바르지 않습니다.',
        tooMany: '잘못된 토큰이 너무 많습니다. 잠시 후 다시 시도하세요.', overview: '개요', deliveries: '전달', bindings: '바인딩',
        tester: '매핑 테스트', mappings: '매핑', pending: '대기 중', oldest: '가장 오래 대기', dead: '실패 보관',
        generation: '매핑 세대', webhooks: '경로·결과별 웹훅', sends: 'HappyTalk 전송', route: '경로',
        outcome: '결과', result: '응답', code: '코드', count: '건수', mode: '방식', chart: '10초당 웹훅, 최근 5분',
        noTraffic: '아직 웹훅이 없습니다.', state: '상태', any: '전체', room: '채팅방', since: '기간', search: '검색', more: '더 보기',
        id: 'ID', attempts: '시도', lastReason: '마지막 사유', accepted: '접수', none: '항목이 없습니다.', request: '요청 (저장된 그대로, 비밀값은 저장하지 않음)',
        call: 'HappyTalk 호출 (토큰은 전송할 때 추가)', noCall: '없음: 매핑이 실패했습니다.', history: '시도 기록',
        at: '시각', http: 'HTTP', message: '메시지', replay: '다시 매핑해 재전송', resend: '저장된 그대로 재전송', retry: '지금 재시도', remove: '삭제',
        confirmDelete: '이 전달을 완전히 삭제할까요?', done: '완료했습니다.', back: '전달 목록으로', nextTry: '다음 시도', finished: '종료',
        kind: '종류', value: '값', uuid: 'uuid', expires: '만료', headers: '헤더 (이름: 값, 한 줄에 하나)', body: '페이로드',
        test: '테스트', testHelp: '불러온 매핑을 이 페이로드에 적용합니다. 아무것도 전송하거나 저장하지 않습니다.', reload: '매핑 다시 불러오기',
        folder: '폴더', file: '파일', delivery: '전달 방식', scheme: '검증', lastReload: '마지막 다시 불러오기', noReload: '시작 후 다시 불러온 적 없음.',
        errors: '오류', loading: '불러오는 중…', failed: '릴레이 응답', language: 'English', h1: '1시간', h24: '24시간', d7: '7일',
        all: '전체', signedOut: '로그아웃했습니다.', call_: '호출 생성', ignored: '무시됨', invalid: '잘못됨', trigger: '계기',
      },
    };
    let lang = localStorage.getItem('happyrelay.lang') || ((navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en');
    let csrf = null;
    let timer = null;
    const t = (key) => (T[lang] && T[lang][key]) || T.en[key] || key;
    const main = () => document.getElementById('main');

    // Elements from data: attributes and children are set as properties and text nodes.
    function h(tag, attrs, ...children) {
      const element = document.createElement(tag);
      for (const [key, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null || value === false) continue;
        if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
        else if (key === 'class') element.className = value;
        else if (key === 'text') element.textContent = value;
        else element.setAttribute(key, value === true ? '' : String(value));
      }
      for (const child of children.flat()) {
        if (child === null || child === undefined || child === false) continue;
        element.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
      return element;
    }

    async function api(method, path, body) {
      const headers = {};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
      const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
      let data = null;
      try { data = await response.json(); } catch (_) { data = null; }
      if (response.status === 404 && path !== '/admin/session' && data && data.error === 'not_found' && !String(path).includes('/deliveries/')) {
        csrf = null;
        showSignIn();
        throw new Error('signed out');
      }
      return { status: response.status, data };
    }

    function say(text, isError) {
      const box = document.getElementById('message');
      box.textContent = text || '';
      box.className = isError ? 'message error' : 'message';
    }

    function failure(reply) {
      const data = reply.data || {};
      return `${t('failed')} ${reply.status}: ${data.message || (data.details || []).join('; ') || ''}`;
    }

    function time(text) {
      if (!text) return '';
      const date = new Date(text);
      return isNaN(date) ? text : date.toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB');
    }

    function table(id, head, rows) {
      if (!rows.length) return h('p', { id, class: 'empty' }, t('none'));
      return h('div', { class: 'scroll' }, h('table', { id },
        h('thead', {}, h('tr', {}, head.map((cell) => h('th', { scope: 'col' }, cell)))),
        h('tbody', {}, rows)));
    }

    function setLanguage(next) {
      lang = next;
      localStorage.setItem('happyrelay.lang', lang);
      document.documentElement.lang = lang;
      renderChrome();
      route();
    }

    function renderChrome() {
      document.title = t('title');
      const nav = document.getElementById('nav');
      nav.replaceChildren();
      if (csrf) {
        for (const [key, hash] of [['overview', '#/overview'], ['deliveries', '#/deliveries'], ['bindings', '#/bindings'], ['tester', '#/tester'], ['mappings', '#/mappings']]) {
          nav.append(h('a', { href: hash, id: `nav-${key}`, 'aria-current': location.hash.startsWith(hash) ? 'page' : null }, t(key)));
        }
      }
      const tools = document.getElementById('tools');
      tools.replaceChildren(h('button', { type: 'button', id: 'language', onclick: () => setLanguage(lang === 'ko' ? 'en' : 'ko') }, t('language')));
      if (csrf) tools.append(h('button', { type: 'button', id: 'sign-out', onclick: signOut }, t('signOut')));
    }

    function showSignIn(note) {
      stopTimer();
      csrf = null;
      renderChrome();
      const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true });
      const form = h('form', { id: 'sign-in-form', class: 'card narrow', onsubmit: async (event) => {
        event.preventDefault();
        const reply = await api('POST', '/admin/session', { token: input.value });
        input.value = '';
        if (reply.status === 200) {
          csrf = reply.data.csrf;
          say('');
          if (!location.hash || location.hash === '#/signin') location.hash = '#/overview';
          renderChrome();
          route();
        } else {
          say(reply.status === 429 ? t('tooMany') : t('wrongToken'), true);
        }
      } },
      h('h1', {}, t('signIn')),
      h('label', { for: 'token' }, t('token')), input,
      h('p', { class: 'hint' }, t('signInHelp')),
      h('button', { type: 'submit', id: 'sign-in' }, t('signIn')));
      main().replaceChildren(form);
      if (note) say(note);
      input.focus();
    }

    async function signOut() {
      await api('DELETE', '/admin/session');
      showSignIn(t('signedOut'));
    }

    function stopTimer() {
      if (timer) clearInterval(timer);
      timer = null;
    }

    async function route() {
      stopTimer();
      say('');
      if (!csrf) return showSignIn();
      renderChrome();
      const [, page, id] = (location.hash || '#/overview').split('?')[0].split('/');
      main().replaceChildren(h('p', { class: 'hint' }, t('loading')));
      try {
        if (page === 'deliveries') await deliveriesPage();
        else if (page === 'delivery') await deliveryPage(decodeURIComponent(id || ''));
        else if (page === 'bindings') await bindingsPage();
        else if (page === 'tester') await testerPage();
        else if (page === 'mappings') await mappingsPage();
        else { await overviewPage(); timer = setInterval(() => overviewPage().catch(() => {}), 5000); }
        const heading = main().querySelector('h1');
        if (heading) heading.setAttribute('tabindex', '-1');
      } catch (error) {
        if (error.message !== 'signed out') say(String(error), true);
      }
    }

    function chart(history) {
      const routes = Object.keys(history.routes || {}).filter((name) => history.routes[name].some((value) => value > 0));
      if (!routes.length) return h('p', { class: 'empty', id: 'chart' }, t('noTraffic'));
      // Each series spans the whole window, zeros before the relay's first samples.
      const length = Math.max(2, history.slots || 2);
      const padded = (values) => Array(Math.max(0, length - values.length)).fill(0).concat(values.slice(-length));
      const width = 600, height = 120;
      const top = Math.max(1, ...routes.flatMap((name) => history.routes[name]));
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('viewBox', `0 0 ${width} ${height + 4}`);
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('id', 'chart');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', t('chart'));
      const legend = h('ul', { class: 'legend' });
      routes.forEach((name, index) => {
        const values = padded(history.routes[name]);
        const points = values.map((value, i) => `${(i * width / (length - 1)).toFixed(1)},${(height + 2 - value * height / top).toFixed(1)}`).join(' ');
        const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
        line.setAttribute('points', points);
        line.setAttribute('class', `series s${index % 6}`);
        svg.append(line);
        legend.append(h('li', { class: `s${index % 6}` }, `${name}: ${values.reduce((a, b) => a + b, 0)}`));
      });
      return h('figure', {}, svg, h('figcaption', {}, t('chart')), legend);
    }

    async function overviewPage() {
      const reply = await api('GET', '/admin/overview');
      if (reply.status !== 200) return say(failure(reply), true);
      const data = reply.data;
      const queue = data.queue || {};
      const byRoute = {};
      for (const row of data.webhooks || []) (byRoute[row.route] = byRoute[row.route] || {})[row.outcome] = row.count;
      const outcomes = ['accepted', 'ignored', 'duplicate', 'bound', 'rejected', 'failed'];
      const webhookRows = Object.keys(byRoute).map((name) => h('tr', {}, h('th', { scope: 'row' }, name), outcomes.map((outcome) => h('td', { class: 'number' }, byRoute[name][outcome] || 0))));
      const sendRows = (data.deliveries || []).map((row) => h('tr', {}, [row.delivery, row.outcome, row.result, row.code].map((cell) => h('td', {}, cell)), h('td', { class: 'number' }, row.count)));
      const age = Math.round(queue.oldest_pending_age_seconds || 0);
      if (location.hash && !location.hash.startsWith('#/overview')) return;
      main().replaceChildren(
        h('h1', {}, t('overview')),
        h('div', { class: 'cards' },
          h('div', { class: 'card stat' }, h('span', {}, t('pending')), h('strong', { id: 'pending' }, queue.pending ?? '–')),
          h('div', { class: 'card stat' }, h('span', {}, t('oldest')), h('strong', { id: 'oldest' }, `${age} s`)),
          h('div', { class: 'card stat' }, h('span', {}, t('dead')), h('strong', { id: 'dead' }, queue.dead ?? '–')),
          h('div', { class: 'card stat' }, h('span', {}, t('generation')), h('strong', { id: 'generation' }, data.generation))),
        h('section', { class: 'card' }, chart(data.history || {})),
        h('section', { class: 'card' }, h('h2', {}, t('webhooks')), table('webhooks', [t('route'), ...outcomes], webhookRows)),
        h('section', { class: 'card' }, h('h2', {}, t('sends')), table('sends', [t('mode'), t('outcome'), t('result'), t('code'), t('count')], sendRows)));
    }

    async function routeNames() {
      const reply = await api('GET', '/admin/mappings');
      return reply.status === 200 ? (reply.data.routes || []).map((row) => row.route) : [];
    }

    function select(id, label, options, value) {
      return [h('label', { for: id }, label), h('select', { id, name: id }, options.map(([key, text]) => h('option', { value: key, selected: key === value }, text)))];
    }

    async function deliveriesPage() {
      const routes = await routeNames();
      const params = new URLSearchParams(location.hash.split('?')[1] || '');
      const results = h('div', { id: 'results' });
      const form = h('form', { id: 'filters', class: 'card filters', onsubmit: (event) => {
        event.preventDefault();
        const query = new URLSearchParams();
        for (const name of ['state', 'route', 'room', 'since']) {
          const value = document.getElementById(`filter-${name}`).value.trim();
          if (value) query.set(name, value);
        }
        location.hash = `#/deliveries?${query}`;
      } },
      select('filter-state', t('state'), [['', t('any')], ['pending', 'pending'], ['dead', 'dead'], ['delivered', 'delivered']], params.get('state') || ''),
      select('filter-route', t('route'), [['', t('any')], ...routes.map((name) => [name, name])], params.get('route') || ''),
      h('label', { for: 'filter-room' }, t('room')), h('input', { id: 'filter-room', value: params.get('room') || '' }),
      select('filter-since', t('since'), [['', t('all')], ['1h', t('h1')], ['24h', t('h24')], ['7d', t('d7')]], params.get('since') || ''),
      h('button', { type: 'submit', id: 'search' }, t('search')));
      main().replaceChildren(h('h1', {}, t('deliveries')), form, results);
      const rows = [];
      const load = async (after) => {
        const query = new URLSearchParams(params);
        query.set('limit', '50');
        if (after) query.set('after', after);
        const reply = await api('GET', `/admin/deliveries?${query}`);
        if (reply.status !== 200) return say(failure(reply), true);
        for (const row of reply.data.deliveries) {
          rows.push(h('tr', { 'data-id': row.id, class: `state-${row.state}` },
            h('td', {}, h('a', { href: `#/delivery/${encodeURIComponent(row.id)}` }, row.id)),
            h('td', {}, row.state), h('td', {}, row.route), h('td', { class: 'number' }, row.attempts), h('td', {}, row.last_reason), h('td', {}, time(row.accepted_at))));
        }
        const more = reply.data.next ? h('button', { type: 'button', id: 'more', onclick: () => load(reply.data.next) }, t('more')) : null;
        results.replaceChildren(table('deliveries-table', [t('id'), t('state'), t('route'), t('attempts'), t('lastReason'), t('accepted')], rows), more || '');
      };
      await load(null);
    }

    async function deliveryPage(id) {
      const reply = await api('GET', `/admin/deliveries/${encodeURIComponent(id)}`);
      if (reply.status !== 200) {
        main().replaceChildren(h('h1', {}, id), h('p', {}, failure(reply)), h('a', { href: '#/deliveries' }, t('back')));
        return;
      }
      const d = reply.data;
      const act = async (method, path, confirmText) => {
        if (confirmText && !window.confirm(confirmText)) return;
        const result = await api(method, path);
        if (result.status === 200) {
          say(`${t('done')} ${(result.data.details || [result.data.message || result.data.result]).join('; ')}`);
          if (method === 'DELETE') location.hash = '#/deliveries'; else await deliveryPage(id);
        } else {
          say(failure(result), true);
        }
      };
      const base = `/admin/deliveries/${encodeURIComponent(id)}`;
      const attempts = (d.history || []).map((a) => h('tr', {}, h('td', { class: 'number' }, a.attempt), h('td', {}, time(a.at)), h('td', {}, a.outcome), h('td', {}, a.reason),
        h('td', {}, a.http_status ?? ''), h('td', { class: 'code' }, a.code ?? ''), h('td', { class: 'happytalk-message' }, a.message ?? '')));
      main().replaceChildren(
        h('p', {}, h('a', { href: '#/deliveries' }, `← ${t('back')}`)),
        h('h1', {}, `${t('delivery')} ${d.id}`),
        h('dl', { class: 'card facts', id: 'facts' },
          h('dt', {}, t('state')), h('dd', { id: 'state' }, d.state + (d.last_reason ? ` — ${d.last_reason}` : '')),
          h('dt', {}, t('route')), h('dd', {}, d.route),
          h('dt', {}, t('room')), h('dd', {}, d.room_id || '–'),
          h('dt', {}, t('accepted')), h('dd', {}, time(d.accepted_at)),
          h('dt', {}, d.state === 'pending' ? t('nextTry') : t('finished')), h('dd', {}, time(d.next_attempt_at || d.finished_at))),
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'replay', disabled: d.state !== 'dead', onclick: () => act('POST', `${base}/replay`) }, t('replay')),
          h('button', { type: 'button', id: 'resend', disabled: d.state !== 'dead' || !d.call, onclick: () => act('POST', `${base}/replay?as_stored=1`) }, t('resend')),
          h('button', { type: 'button', id: 'retry', disabled: d.state !== 'pending', onclick: () => act('POST', `${base}/retry`) }, t('retry')),
          h('button', { type: 'button', id: 'delete', class: 'danger', onclick: () => act('DELETE', base, t('confirmDelete')) }, t('remove'))),
        h('section', { class: 'card' }, h('h2', {}, t('history')), table('attempts', ['#', t('at'), t('outcome'), t('result'), t('http'), t('code'), t('message')], attempts)),
        h('section', { class: 'card' }, h('h2', {}, t('call')), h('pre', { id: 'call' }, d.call ? JSON.stringify(d.call, null, 2) : t('noCall'))),
        h('section', { class: 'card' }, h('h2', {}, t('request')), h('pre', { id: 'request' }, JSON.stringify(d.request, null, 2))));
    }

    async function bindingsPage() {
      const results = h('div', { id: 'results' });
      const kind = h('input', { id: 'binding-kind', list: 'kinds', placeholder: 'order_number' });
      const value = h('input', { id: 'binding-value' });
      const search = async () => {
        const query = new URLSearchParams();
        if (kind.value.trim()) { query.set('kind', kind.value.trim()); query.set('value', value.value.trim()); }
        const reply = await api('GET', `/admin/bindings?${query}`);
        if (reply.status !== 200) return say(failure(reply), true);
        const rows = reply.data.bindings.map((row) => {
          const [k, ...rest] = row.key.split('=');
          return h('tr', {}, h('td', {}, row.key), h('td', {}, row.uuid), h('td', {}, row.room_id), h('td', {}, time(row.expires)),
            h('td', {}, h('button', { type: 'button', class: 'danger', onclick: async () => {
              const done = await api('DELETE', `/admin/bindings?${new URLSearchParams({ kind: k, value: rest.join('=') })}`);
              if (done.status === 200) { say(t('done')); await search(); } else say(failure(done), true);
            } }, t('remove'))));
        });
        results.replaceChildren(table('bindings-table', [`${t('kind')}=${t('value')}`, t('uuid'), t('room'), t('expires'), ''], rows));
      };
      main().replaceChildren(h('h1', {}, t('bindings')),
        h('form', { class: 'card filters', onsubmit: (event) => { event.preventDefault(); search(); } },
          h('label', { for: 'binding-kind' }, t('kind')), kind,
          h('datalist', { id: 'kinds' }, ['order_number', 'phone', 'email', 'member_id'].map((name) => h('option', { value: name }))),
          h('label', { for: 'binding-value' }, t('value')), value,
          h('button', { type: 'submit', id: 'binding-search' }, t('search'))),
        results);
      await search();
    }

    async function testerPage() {
      const routes = await routeNames();
      const output = h('div', { id: 'tester-result', 'aria-live': 'polite' });
      const headers = h('textarea', { id: 'tester-headers', rows: 3 }, 'Content-Type: application/json');
      const body = h('textarea', { id: 'tester-body', rows: 10, spellcheck: 'false' }, '{\n}');
      main().replaceChildren(h('h1', {}, t('tester')), h('p', { class: 'hint' }, t('testHelp')),
        h('form', { class: 'card', onsubmit: async (event) => {
          event.preventDefault();
          const reply = await api('POST', '/admin/map', { route: document.getElementById('tester-route').value, headers: headers.value, body: body.value });
          if (reply.status !== 200) return output.replaceChildren(h('p', { class: 'error' }, failure(reply)));
          const label = { call: t('call_'), ignored: t('ignored'), invalid: t('invalid') }[reply.data.outcome];
          output.replaceChildren(h('p', { class: `badge ${reply.data.outcome}`, id: 'tester-outcome' }, label), h('pre', { id: 'tester-lines' }, reply.data.lines.join('\n')));
        } },
        select('tester-route', t('route'), routes.map((name) => [name, name]), routes[0]),
        h('label', { for: 'tester-headers' }, t('headers')), headers,
        h('label', { for: 'tester-body' }, t('body')), body,
        h('button', { type: 'submit', id: 'tester-run' }, t('test'))),
        output);
    }

    async function mappingsPage() {
      const reply = await api('GET', '/admin/mappings');
      if (reply.status !== 200) return say(failure(reply), true);
      const d = reply.data;
      const last = d.last_reload;
      const rows = (d.routes || []).map((row) => h('tr', {}, h('td', {}, row.route), h('td', {}, row.file), h('td', {}, row.delivery), h('td', {}, row.scheme)));
      main().replaceChildren(h('h1', {}, t('mappings')),
        h('dl', { class: 'card facts' },
          h('dt', {}, t('generation')), h('dd', { id: 'mappings-generation' }, d.generation),
          h('dt', {}, t('folder')), h('dd', {}, d.folder),
          h('dt', {}, t('lastReload')), h('dd', { id: 'last-reload' }, last ? `${time(last.at)} (${t('trigger')}: ${last.trigger})` : t('noReload'))),
        last && last.errors.length ? h('section', { class: 'card error', id: 'reload-errors' }, h('h2', {}, t('errors')), h('ul', {}, last.errors.map((text) => h('li', {}, text)))) : '',
        h('div', { class: 'actions' }, h('button', { type: 'button', id: 'reload', onclick: async () => {
          const result = await api('POST', '/admin/reload');
          say(result.status === 200 ? `${t('done')} ${t('generation')} ${result.data.generation}` : failure(result), result.status !== 200);
          await mappingsPage();
        } }, t('reload'))),
        h('section', { class: 'card' }, table('routes-table', [t('route'), t('file'), t('delivery'), t('scheme')], rows)));
    }

    window.addEventListener('hashchange', route);
    window.addEventListener('DOMContentLoaded', async () => {
      document.documentElement.lang = lang;
      const reply = await api('GET', '/admin/session').catch(() => ({ status: 0 }));
      if (reply.status === 200) { csrf = reply.data.csrf; route(); } else showSignIn();
    });
    """#
}
