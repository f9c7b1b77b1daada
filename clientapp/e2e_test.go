package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pocketbase/pocketbase/core"
)

// chromiumPath is Debian's chromium (scripts/test.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// person is one browser profile driving the client app.
type person struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string
	shot *shooter
}

// shooter saves a numbered screenshot of every page visited.
type shooter struct {
	dir string
	n   int
}

func (p *person) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		lctx, lcancel := context.WithTimeout(p.ctx, 3*time.Second)
		defer lcancel()
		loc, _ := chromedp.Run(lctx, chromedp.Location())
		body, _ := chromedp.Run(lctx, chromedp.Text(chromedp.CSS("body")))
		p.t.Fatalf("%s: %s: %v\nat %s:\n%s", p.name, what, err, loc, body)
	}
}

// screenshot saves the current page as NN-person-name.png.
func (p *person) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	// Each person is a separate browser context; only the front tab paints.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.BringToFront, cdp.Empty{})
		return err
	})); err != nil {
		p.t.Fatalf("bring %s to front: %v", p.name, err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	p.shot.n++
	file := filepath.Join(p.shot.dir, fmt.Sprintf("%02d-%s-%s.png", p.shot.n, p.name, name))
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// Accessible-name selectors: a field by its <label>, a button or link by
// its text.
func field(label string) string {
	return fmt.Sprintf(`//*[@id=//label[normalize-space()=%q]/@for]`, label)
}
func button(text string) string { return fmt.Sprintf(`//button[normalize-space()=%q]`, text) }
func link(text string) string   { return fmt.Sprintf(`//a[normalize-space()=%q]`, text) }
func heading(text string) string {
	return fmt.Sprintf(`//h1[normalize-space()=%q]`, text)
}
func flash(contains string) string {
	return fmt.Sprintf(`//p[@class="flash"][contains(., %q)]`, contains)
}

// memoryItem is the list item holding a memory's text.
func memoryItem(text string) string { return fmt.Sprintf(`//li[.//*[contains(., %q)]]`, text) }

func (p *person) open(path, h1 string) {
	p.t.Helper()
	p.run("open "+path, chromedp.Navigate(p.base+path), chromedp.WaitVisible(heading(h1)))
}

func (p *person) fill(label, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(field(label), value)
}

func (p *person) pageText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		p.t.Fatalf("read page: %v", err)
	}
	return body
}

func (p *person) signup() {
	p.open("/signup", "Sign up")
	p.screenshot("signup")
	p.run("sign up",
		p.fill("Username", p.name), p.fill("Email", p.name+"@example.test"), p.fill("Password", "password-"+p.name),
		chromedp.Click(button("Sign up")), chromedp.WaitVisible(heading("Connect to Picard")))
}

func (p *person) createMemory(text, permission, shareWith string) {
	p.open("/memories/new", "New memory")
	acts := []chromedp.Action[chromedp.Void]{p.fill("Text", text), chromedp.SetValue(field("Permission"), permission)}
	if shareWith != "" {
		acts = append(acts, p.fill("Share with", shareWith))
	}
	acts = append(acts, chromedp.Click(button("Save")), chromedp.WaitVisible(flash("Memory saved")))
	p.run("create "+text, acts...)
}

// TestBrowserEndToEnd drives headless Chromium through the client app
// against a real Picard: two people sign up, connect (direct; OAuth code +
// PKCE through Picard's own pages), create private/public/shared memories,
// edit, bulk-delete, search, share and ask a persona; the private memory
// never reaches the other person. Screenshots of every page go to
// CLIENTAPP_SCREENSHOTS (default .test-output/screenshots/clientapp).
func TestBrowserEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing but CI=true: scripts/test.sh installs it", chromiumPath)
		}
		t.Skipf("%s not installed (scripts/test.sh installs it)", chromiumPath)
	}
	dir := os.Getenv("CLIENTAPP_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", ".test-output", "screenshots", "clientapp")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}

	e := start(t, false, nil, nil)
	e.register()
	// A person who already has a Picard account connects through OAuth.
	users, err := e.picard.App.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(users)
	rec.Set("username", "bob")
	rec.SetEmail("bob@picard.test")
	rec.SetPassword("bob's picard password")
	rec.SetVerified(true)
	if err := e.picard.App.Save(rec); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	shot := &shooter{dir: dir}
	newPerson := func(name string) *person {
		ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil { // opens the tab for the context's lifetime
			t.Fatalf("open a tab for %s: %v", name, err)
		}
		return &person{t: t, name: name, ctx: ctx, base: e.URL, shot: shot}
	}
	alice, bob := newPerson("alice"), newPerson("bob")

	// Alice: sign up, direct connect.
	alice.signup()
	alice.screenshot("connect")
	alice.run("direct connect", chromedp.Click(button("Connect to Picard")), chromedp.WaitVisible(heading("Dashboard")), chromedp.WaitVisible(flash("Connected")))
	alice.screenshot("dashboard")
	if typ, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string]("typeof htmx")); err != nil || typ != "object" {
		t.Fatalf("htmx (served from the binary) is not active: %q %v", typ, err)
	}

	// Bob: sign up, Sign in with Picard on Picard's own pages (code + PKCE).
	bob.signup()
	bob.run("oauth: to Picard", chromedp.Click(button("Sign in with Picard")), chromedp.WaitVisible(field("Email or username")))
	bob.screenshot("picard-authorize-signin")
	bob.run("oauth: sign in at Picard",
		bob.fill("Email or username", "bob"), chromedp.SendKeys(chromedp.CSS("#password"), "bob's picard password"),
		chromedp.Click(button("Sign in")), chromedp.WaitVisible(button("Allow")))
	bob.screenshot("picard-authorize-consent")
	bob.run("oauth: allow", chromedp.Click(button("Allow")), chromedp.WaitVisible(heading("Dashboard")), chromedp.WaitVisible(flash("Connected")))
	bob.open("/connect", "Connect to Picard")
	if !strings.Contains(bob.pageText(), "signed in with Picard") {
		t.Fatalf("bob's connection: %s", bob.pageText())
	}
	bob.screenshot("connected-oauth")

	// Alice writes private, public and shared memories.
	alice.open("/memories/new", "New memory")
	alice.screenshot("memory-new")
	alice.createMemory("My bank PIN is 8642", "private", "")
	alice.screenshot("memory-view")
	alice.createMemory("I grow tomatoes on my balcony", "public", "")
	alice.createMemory("Surprise party for Carol on Saturday", "shared", "bob")
	alice.createMemory("Old note one", "private", "")
	alice.createMemory("Old note two", "private", "")
	alice.open("/memories/new", "New memory")
	alice.run("bad input keeps the text", alice.fill("Text", "Share this"), chromedp.SetValue(field("Permission"), "shared"),
		alice.fill("Share with", "nobody-such"), chromedp.Click(button("Save")), chromedp.WaitVisible(`//span[@class="error"][contains(., "No such user: nobody-such")]`))
	alice.screenshot("memory-form-error")

	// Edit: the public memory gets more text.
	alice.open("/memories", "Memories")
	alice.screenshot("memories")
	alice.run("edit", chromedp.Click(memoryItem("tomatoes")+link("Edit")[1:]), chromedp.WaitVisible(heading("Edit memory")))
	alice.screenshot("memory-edit")
	alice.run("save edit", alice.fill("Text", "I grow tomatoes and basil on my balcony"), chromedp.Click(button("Save")), chromedp.WaitVisible(flash("Memory updated")))

	// Bulk delete the two old notes, with a confirmation step.
	alice.open("/memories", "Memories")
	alice.run("select old notes", chromedp.Click(memoryItem("Old note one")+`//input[@type="checkbox"]`), chromedp.Click(memoryItem("Old note two")+`//input[@type="checkbox"]`),
		chromedp.Click(button("Delete selected")), chromedp.WaitVisible(button("Confirm")))
	alice.screenshot("bulk-confirm")
	alice.run("confirm bulk delete", chromedp.Click(button("Confirm")), chromedp.WaitVisible(flash("Deleted 2 memories")))
	alice.screenshot("memories-after-bulk-delete")
	if text := alice.pageText(); strings.Contains(text, "Old note") || !strings.Contains(text, "basil") || !strings.Contains(text, "PIN") {
		t.Fatalf("after bulk delete: %s", text)
	}

	// Delete one memory from the list (JavaScript on), with confirmation.
	alice.createMemory("Temporary note", "private", "")
	alice.open("/memories", "Memories")
	alice.run("delete one", chromedp.Click(memoryItem("Temporary note")+`//button[normalize-space()="Delete"]`), chromedp.WaitVisible(button("Confirm")),
		chromedp.Click(button("Confirm")), chromedp.WaitVisible(flash("Memory deleted")))
	if strings.Contains(alice.pageText(), "Temporary note") {
		t.Fatal("deleted memory still listed")
	}

	// Alice searches her own memories.
	alice.open("/search", "Search")
	alice.run("search", alice.fill("Query", "bank PIN"), chromedp.SetValue(field("Scope"), "own"), chromedp.Click(button("Search")),
		chromedp.WaitVisible(`//ol[contains(@class,"results")]`))
	alice.screenshot("search")
	if !strings.Contains(alice.pageText(), "8642") {
		t.Fatalf("alice's own search: %s", alice.pageText())
	}

	// Bob: sees the shared and public memories, never the private one.
	bob.open("/search", "Search")
	bob.run("bob searches", bob.fill("Query", "alice PIN tomatoes party"), chromedp.Click(button("Search")),
		chromedp.WaitVisible(`//ol[contains(@class,"results")]`))
	bob.screenshot("search-accessible")
	text := bob.pageText()
	if !strings.Contains(text, "Surprise party") || !strings.Contains(text, "basil") || strings.Contains(text, "8642") {
		t.Fatalf("bob's search: %s", text)
	}
	bob.open("/personas", "Personas")
	bob.run("ask alice's persona", bob.fill("User", "alice"), bob.fill("Question", "What does alice grow? Any PIN?"),
		chromedp.Click(button("Ask")), chromedp.WaitVisible(`//section[@aria-label="Answer"]`))
	bob.screenshot("persona-answer")
	if text := bob.pageText(); !strings.Contains(text, "tomatoes") || strings.Contains(text, "8642") || !strings.Contains(text, "offline fallback") {
		t.Fatalf("persona answer: %s", text)
	}
	// The private memory's own URL, typed by bob: 404, like a missing one.
	alice.open("/memories", "Memories")
	pinURL, err := chromedp.Run(alice.ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("a.text")].find(a => a.textContent.includes("PIN")).getAttribute("href")`))
	if err != nil || !strings.HasPrefix(pinURL, "/memories/") {
		t.Fatalf("private memory link: %q %v", pinURL, err)
	}
	bob.open(pinURL, "Not found")
	if strings.Contains(bob.pageText(), "8642") {
		t.Fatal("bob sees alice's private memory by URL")
	}
	bob.screenshot("not-found")
	bob.open("/memories", "Memories")
	if strings.Contains(bob.pageText(), "8642") {
		t.Fatal("alice's private memory in bob's list")
	}
	bob.screenshot("memories-bob")
	bob.open("/", "Dashboard")
	bob.screenshot("dashboard-bob")

	// With JavaScript off every form still works: carol signs up,
	// connects, writes, edits and deletes with the confirmation page.
	carol := newPerson("carol")
	carol.run("disable JavaScript", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	carol.signup()
	carol.run("direct connect without JS", chromedp.Click(button("Connect to Picard")), chromedp.WaitVisible(flash("Connected")))
	if typ, _ := chromedp.Run(carol.ctx, chromedp.Evaluate[string]("typeof htmx")); typ == "object" {
		t.Fatal("JavaScript still runs for carol")
	}
	carol.createMemory("Carol writes without JavaScript", "public", "")
	carol.run("edit without JS", chromedp.Click(link("Edit")), chromedp.WaitVisible(heading("Edit memory")),
		carol.fill("Text", "Carol edits without JavaScript"), chromedp.Click(button("Save")), chromedp.WaitVisible(flash("Memory updated")))
	carol.open("/memories", "Memories")
	carol.run("delete without JS", chromedp.Click(memoryItem("Carol edits")+`//button[normalize-space()="Delete"]`), chromedp.WaitVisible(button("Confirm")))
	carol.screenshot("delete-confirm-no-js")
	carol.run("confirm without JS", chromedp.Click(button("Confirm")), chromedp.WaitVisible(flash("Memory deleted")))
	if strings.Contains(carol.pageText(), "Carol edits") {
		t.Fatal("carol's memory still listed after delete")
	}

	// Remaining pages, for the record.
	alice.open("/account", "Account")
	alice.screenshot("account")
	alice.open("/personas", "Personas")
	alice.screenshot("personas")
	alice.run("disconnect", chromedp.Navigate(e.URL+"/connect"), chromedp.WaitVisible(button("Disconnect")), chromedp.Click(button("Disconnect")),
		chromedp.WaitVisible(flash("Disconnected")))
	alice.screenshot("disconnected")
	alice.run("sign out", chromedp.Click(button("Sign out")), chromedp.WaitVisible(heading("Sign in")))
	alice.screenshot("login")
}
