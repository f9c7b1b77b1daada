package vectorstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// LocalSpace is the embedding space of LocalEmbedder.
var LocalSpace = Space{Embedder: "local", Model: "hash-ngram-v2", Dims: 2048}

// LocalEmbedder is the built-in offline embedder: deterministic, dependency
// free, and needing no model download.
//
// It is a lexical embedding made by feature hashing. A text is lowercased
// and split into words; stopwords are dropped and the rest lightly stemmed
// ("memories" and "memory" meet, as do "running" and "runs"). Its features
// are the word unigrams, adjacent word bigrams and, with a lower weight, the
// character 3-grams of each word (which catch spelling variants and shared
// roots). Each feature gets a sublinear weight 1+ln(tf), is hashed with
// FNV-1a into one of 2048 dimensions with a hashed sign (so collisions cancel
// rather than pile up), and the vector is L2-normalised.
//
// Cosine similarity between two such vectors therefore measures word and
// sub-word overlap. It is not semantic: synonyms and paraphrases with no
// words in common ("car" and "automobile") score near zero, and it knows
// nothing about word importance beyond the stopword list. Use an OpenAI
// compatible embedder for meaning-based search.
type LocalEmbedder struct{}

var _ Embedder = (*LocalEmbedder)(nil)

// NewLocalEmbedder returns the offline hashing embedder.
func NewLocalEmbedder() *LocalEmbedder { return &LocalEmbedder{} }

// Space returns LocalSpace.
func (*LocalEmbedder) Space() Space { return LocalSpace }

// Embed returns one normalised vector per text. A text with no usable
// characters still gets a (fixed) non-zero vector.
func (e *LocalEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("local embed: %w", err)
			}
		}
		out[i] = embedLocal(t, LocalSpace.Dims)
	}
	return out, nil
}

// feature group weights: words carry the meaning, bigrams add phrase
// context, character 3-grams only nudge.
const (
	weightWord    = 1.0
	weightBigram  = 0.6
	weightTrigram = 0.25
)

func embedLocal(text string, dims int) []float32 {
	words := localTokens(text)
	tf := make(map[string]float64)
	add := func(kind byte, feat string, w float64) {
		tf[string(kind)+":"+feat] += w
	}
	prev := ""
	for _, w := range words {
		add('w', w, weightWord)
		if prev != "" {
			add('b', prev+" "+w, weightBigram)
		}
		prev = w
		g := []rune("<" + w + ">")
		for i := 0; i+3 <= len(g); i++ {
			add('c', string(g[i:i+3]), weightTrigram)
		}
	}
	if len(tf) == 0 {
		// only stopwords, punctuation or nothing: fall back to the raw text
		// so the vector is never zero.
		add('r', strings.ToLower(strings.TrimSpace(text)), weightWord)
	}

	vec := make([]float64, dims)
	for feat, count := range tf {
		// count is weight*tf; apply the sublinear scaling to tf.
		w := featureWeight(feat[0])
		x := w * (1 + math.Log(count/w))
		h := fnv.New64a()
		h.Write([]byte(feat))
		sum := h.Sum64()
		i := int(sum % uint64(dims))
		if sum>>63 == 1 {
			x = -x
		}
		vec[i] += x
	}
	var norm float64
	for _, x := range vec {
		norm += x * x
	}
	out := make([]float32, dims)
	if norm == 0 {
		// every feature cancelled out in its bucket; vanishingly rare.
		out[0] = 1
		return out
	}
	inv := 1 / math.Sqrt(norm)
	for i, x := range vec {
		out[i] = float32(x * inv)
	}
	return out
}

func featureWeight(kind byte) float64 {
	switch kind {
	case 'b':
		return weightBigram
	case 'c':
		return weightTrigram
	default:
		return weightWord
	}
}

// localTokens lowercases text, splits it into words, drops stopwords and
// stems what is left.
func localTokens(text string) []string {
	fields := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	words := fields[:0]
	for _, f := range fields {
		f = strings.Trim(f, "'")
		if i := strings.IndexByte(f, '\''); i > 0 {
			f = f[:i] // "user's" -> "user", "don't" -> "don"
		}
		if f == "" || localStopwords[f] {
			continue
		}
		words = append(words, stem(f))
	}
	return words
}

// stem strips common English inflections; it is deliberately light (no
// dictionary) and keeps at least three letters of the word.
func stem(w string) string {
	n := len(w)
	switch {
	case n > 4 && strings.HasSuffix(w, "ies"):
		return w[:n-3] + "y"
	case n > 5 && strings.HasSuffix(w, "ing"):
		return undouble(w[:n-3])
	case n > 4 && strings.HasSuffix(w, "ed"):
		return undouble(w[:n-2])
	case n > 5 && strings.HasSuffix(w, "ly") && !strings.HasSuffix(w, "ily"):
		return w[:n-2]
	case n > 4 && (strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "shes") ||
		strings.HasSuffix(w, "sses") || strings.HasSuffix(w, "xes")):
		return w[:n-2]
	case n > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:n-1]
	}
	return w
}

// undouble turns "runn" into "run" and "stopp" into "stop".
func undouble(w string) string {
	n := len(w)
	if n >= 4 && w[n-1] == w[n-2] && strings.IndexByte("bdfgmnprt", w[n-1]) >= 0 {
		return w[:n-1]
	}
	return w
}

var localStopwords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(`
		a about above after again against all am an and any are as at be
		because been before being below between both but by can could did do
		does doing down during each few for from further had has have having
		he her here hers herself him himself his how i if in into is it its
		itself just me more most my myself no nor not now of off on once only
		or other our ours ourselves out over own same she should so some such
		than that the their theirs them themselves then there these they this
		those through to too under until up very was we were what when where
		which while who whom why will with would you your yours yourself
		yourselves also s t ll re ve d m don doesn didn isn wasn weren aren
		hasn haven hadn won wouldn shouldn couldn`) {
		m[w] = true
	}
	return m
}()
