"""Text written by a participant or an LLM, made safe for oTree's templates (which do not auto-escape)."""
import html


def escape_text(text: str) -> str:
    """Participant or LLM text made safe for oTree templates; keeps line breaks."""
    return html.escape(text or '', quote=True).replace('\r\n', '\n').replace('\n', '<br>')
