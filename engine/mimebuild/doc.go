// Package mimebuild assembles an Internet message (RFC 5322) with MIME
// bodies (RFC 2045–2049) from plain parts: sender, recipients, subject, a
// text and/or HTML body, custom header fields and attachments. The HTTP
// inject API uses it to turn JSON into the bytes that are spooled.
//
// Design:
//
//   - The output is always CRLF-terminated, every header line is folded at
//     78 characters where the value allows it (RFC 5322 §2.1.1, §2.2.3) and no
//     line ever exceeds 998 characters (Build fails instead).
//   - The body structure follows the content: text only → text/plain, HTML only
//     → text/html, both → multipart/alternative (RFC 2046 §5.1.4, plain text
//     first); attachments with a Content-ID are inline and wrap the above in
//     multipart/related (RFC 2387); other attachments wrap everything in
//     multipart/mixed.
//   - Text parts are charset=utf-8; they are sent 7bit when they are pure
//     ASCII with lines of at most 78 characters, quoted-printable otherwise
//     (RFC 2045 §6.7). Attachments are base64 with 76-character lines
//     (RFC 2045 §6.8).
//   - Non-ASCII subjects, display names and custom header values become RFC
//     2047 encoded words (Q or B, whichever is shorter), split at character
//     boundaries into words of at most 75 characters. A subject or name that
//     merely looks like an encoded word ("=?…?=") is encoded too, so that a
//     reader decodes exactly what was given.
//   - Header injection is impossible by construction: CR or LF in any header
//     value, name, address or file name is an error (ErrHeaderInjection),
//     never silently stripped. Custom headers may not replace the fields the
//     builder writes itself (ErrReservedHeader). Bcc addresses never appear
//     in the message; they are envelope recipients only.
//   - BuildLimited refuses a message over a size limit (ErrTooLarge) before
//     building it in full: header values, a text longer than the room left,
//     or an attachment whose base64 length (known in advance) is over it,
//     are refused before they are encoded, and quoted-printable encoding,
//     which may triple a text, stops at the limit. The HTTP API builds with the
//     listener's max_message_size so that a small request cannot make a
//     huge message.
//   - Multipart boundaries come from an injected random source (tests pass a
//     fixed one) and are checked not to occur in any encoded part; a
//     collision draws a new boundary.
//
// Addresses are checked against the RFC 5321 §4.1.2 Mailbox syntax (dot-string
// or quoted-string local part, a domain or address literal is required);
// internationalized (UTF-8) addresses are not accepted yet.
package mimebuild
