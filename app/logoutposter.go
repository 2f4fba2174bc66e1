package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchhq/latch/logout"
)

// logoutPoster is how logout tokens leave: until the outbound client
// lands, a plain client that follows no redirect and gives up after 5 s.
func (a *App) logoutPoster() logout.Poster {
	return &formPoster{client: &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type formPoster struct{ client *http.Client }

func (p *formPoster) PostForm(ctx context.Context, rawURL string, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("back-channel logout request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return errors.New("back-channel logout: receiver unreachable")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("back-channel logout: receiver answered %d", resp.StatusCode)
	}
	return nil
}
