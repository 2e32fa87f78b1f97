// Package shell quotes words for a POSIX shell: the one place where
// kafka-bootc writes command lines that a shell reads (builder scripts,
// Containerfiles, commands run over SSH).
package shell

import "strings"

// safe are the characters of a word that a shell reads as they are.
const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@+,"

// Quote quotes a word so that a POSIX shell reads it as it is: in single
// quotes, where a single quote is closed, escaped and opened again; a
// non-empty word of safe characters alone stays bare, so that what is
// written reads as one would write it.
func Quote(word string) string {
	if word != "" && strings.Trim(word, safe) == "" {
		return word
	}
	return "'" + strings.ReplaceAll(word, "'", `'\''`) + "'"
}

// Join quotes each word and joins them with spaces: a command line.
func Join(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
