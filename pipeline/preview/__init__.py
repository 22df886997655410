"""Pull-request previews: Pulumi's preview JSON or an offline render diff, the
policy pack's verdict, and one redacted Markdown comment posted to GitHub."""
