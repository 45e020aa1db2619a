"""Media: decoding image files (EXIF transpose, bomb guard, to-RGB) and the thumbnail cache with its single-decode
pass. The pass takes its feature extractors from the caller (:mod:`imagerank.features` hands in its registry)."""

from .decode import decode_image, fingerprint, reduce_like_thumbnail, to_rgb
from .scanning import ScanReport, scan_workspace
from .thumbs import DecodeJob, DecodeResult, Extractor, ThumbnailCache, process_job, run_decode_jobs, thumb_path

__all__ = [
    "DecodeJob",
    "DecodeResult",
    "Extractor",
    "ScanReport",
    "ThumbnailCache",
    "decode_image",
    "fingerprint",
    "process_job",
    "reduce_like_thumbnail",
    "run_decode_jobs",
    "scan_workspace",
    "thumb_path",
    "to_rgb",
]
