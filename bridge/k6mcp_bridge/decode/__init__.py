"""k6's wire formats: JSON lines and CSV rows into messages, format detection, rejections."""
