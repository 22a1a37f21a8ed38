package web_test

import (
	"encoding/json"
	"fmt"
	"time"
)

// DOM helpers for the page tests: they read what a user sees.

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitJS polls a boolean expression until it holds.
func (b *browser) waitJS(d time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := eval[bool](b, expr)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: no %s within %v (%s; err %v)\nstate: %s", b.name, what, d, expr, err, b.describe())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// shownExpr is true when the element exists and is rendered.
func shownExpr(sel string) string {
	return fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.getClientRects().length > 0 &&
		getComputedStyle(e).visibility !== 'hidden'; })()`, js(sel))
}

func (b *browser) shown(sel string) bool {
	b.t.Helper()
	v, err := eval[bool](b, shownExpr(sel))
	return err == nil && v
}

func (b *browser) waitShown(sel string) {
	b.t.Helper()
	b.waitJS(10*time.Second, sel+" shown", shownExpr(sel))
}

// text is the rendered text of the element ("" if absent).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return mustEval[string](b, fmt.Sprintf(`(document.querySelector(%s) || {}).innerText || ''`, js(sel)))
}

// waitText waits until the element's text contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.waitJS(10*time.Second, fmt.Sprintf("%q in %s", want, sel),
		fmt.Sprintf(`((document.querySelector(%s) || {}).innerText || '').includes(%s)`, js(sel), js(want)))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	mustEval[bool](b, fmt.Sprintf(`(document.querySelector(%s).click(), true)`, js(sel)))
}

// describe is what a failing test prints about the page.
func (b *browser) describe() string {
	v, err := eval[string](b, `(() => {
		const pick = (s) => { const e = document.querySelector(s); return e ? (e.hidden ? '[hidden] ' : '') + e.innerText.slice(0, 200) : '-'; };
		return JSON.stringify({state: pick('#state'), e2ee: pick('#e2ee'), banner: pick('#banner'), screen: pick('#screen'),
			tiles: [...document.querySelectorAll('.tile')].map((t) => t.dataset.participant + '/' + t.dataset.source + ':' +
				JSON.stringify(Object.assign({}, t.dataset))), notices: pick('#notices')});
	})()`)
	if err != nil {
		return err.Error()
	}
	return v
}
