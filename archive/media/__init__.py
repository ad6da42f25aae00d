"""Media: originals, their derivatives and signed manifests (models, services) and the ffmpeg layer
(``archive.media.ffmpeg``) that probes them and makes proxies and posters."""
