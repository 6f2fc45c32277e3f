"""Identities of the embedded corpus, made from two real photographs that ship with packages.

Sources: scikit-image's ``astronaut`` (Eileen Collins) and matplotlib's sample
``grace_hopper.jpg``. dlib (HOG detector + 68-point predictor) finds both faces; its
landmarks are stored in ``PHOTO_LANDMARKS`` (a test re-detects them) so a build needs no face
detection. Both photos are aligned by a similarity transform (eye centres) into a square head
canvas of ``CANVAS`` px.

An identity (``make_identity``) is:

1. a morph at fraction ``alpha`` between the two faces: the target shape is the landmark
   blend (plus forehead points and fixed canvas-border points), each photo is warped onto it
   by a thin-plate spline and the two warps are cross-dissolved;
2. shape variation on the target landmarks (face width, eye spacing, jaw width, nose length,
   mouth width, face length) and an optional mirror image;
3. a neutral closed mouth: the photos' smiles and parted lips are replaced by lips that meet,
   with a 4 px dark slit between the inner lip lines (the slit keeps the rest landmarks
   distinct so the animation can open or shut it);
4. masking: the face is cut out along the convex hull of the jaw line and a forehead arc above
   the brows (eroded 2 px, feathered) and placed over a procedural neck and hair cap (with a
   fringe over the top edge of the face) of the identity's colours; skin tone is shifted by
   per-channel gains. The background and the clothes are
   drawn per frame by ``backdrop`` (plain vertical gradient + shoulders) outside the head
   canvas, so nothing of the photos' backgrounds remains.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bench.data.synth.warp import sample_image, tps_backward_warp

CANVAS = 256  # head canvas side (px)
EYE_CENTER = (128.0, 108.0)  # midpoint of the two eye centres in the canvas
EYE_DISTANCE = 62.0  # distance between the eye centres in the canvas (px)
MOUTH_SLIT = 4.0  # px between the inner lip lines at rest

# 68-point index groups (iBUG 300-W)
JAW = list(range(0, 17))
BROW_R, BROW_L = list(range(17, 22)), list(range(22, 27))  # subject's right = image left
NOSE = list(range(27, 36))
EYE_R, EYE_L = list(range(36, 42)), list(range(42, 48))
OUTER_UP, OUTER_LOW = [49, 50, 51, 52, 53], [59, 58, 57, 56, 55]  # paired columns
INNER_UP, INNER_LOW = [61, 62, 63], [67, 66, 65]
MIRROR = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30]
                  + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
                  + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60]
                  + [67, 66, 65])
"""Landmark index permutation of a horizontally mirrored face."""


class FaceSourceError(RuntimeError):
    """A source photo or a dlib model is missing, or dlib found no face."""


def models_dir() -> Path:
    """Folder of the ``face-recognition-models`` .dat files (the package is not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceSourceError("face-recognition-models is not installed "
                              "(pip install face-recognition-models)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@cache
def dlib_models() -> tuple:
    """(frontal detector, 68-point shape predictor) for this process."""
    import dlib

    predictor = models_dir() / "shape_predictor_68_face_landmarks.dat"
    if not predictor.is_file():
        raise FaceSourceError(f"dlib model missing: {predictor}")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor))


def detect_landmarks(image: np.ndarray, upsample: int = 1) -> np.ndarray | None:
    """68 dlib landmarks (x, y) of the largest face in an RGB uint8 image, or None."""
    detector, predictor = dlib_models()
    faces = detector(np.ascontiguousarray(image), upsample)
    if len(faces) == 0:
        return None
    box = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(np.ascontiguousarray(image), box)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


# dlib's 68 landmarks of the two photos (HOG detector, upsample 1, largest face, 68-point
# predictor of face-recognition-models), stored so that building a corpus needs no detection;
# ``photo_landmarks(detect=True)`` recomputes them and the tests check they still agree.
PHOTO_LANDMARKS: dict[str, list[list[int]]] = {
    "astronaut": [
        [179, 104], [180, 116], [181, 127], [182, 139], [185, 150], [191, 160], [200, 168],
        [209, 176], [220, 178], [232, 177], [243, 171], [253, 163], [260, 154], [265, 143],
        [268, 131], [270, 120], [272, 108], [186, 94], [192, 88], [200, 87], [208, 89],
        [216, 92], [236, 93], [244, 91], [252, 91], [260, 92], [265, 99], [226, 102],
        [225, 111], [225, 119], [225, 127], [214, 131], [219, 133], [224, 134], [229, 133],
        [234, 132], [195, 101], [200, 98], [207, 98], [212, 104], [206, 104], [199, 104],
        [237, 106], [243, 100], [250, 100], [255, 105], [250, 107], [244, 107], [201, 139],
        [209, 139], [218, 139], [224, 141], [230, 140], [238, 140], [246, 141], [238, 151],
        [229, 155], [222, 156], [216, 155], [208, 150], [204, 141], [218, 143], [223, 144],
        [230, 143], [243, 142], [229, 150], [223, 151], [217, 150]],
    "grace_hopper": [
        [178, 203], [181, 226], [186, 248], [192, 270], [199, 291], [209, 310], [226, 323],
        [245, 331], [269, 333], [293, 329], [312, 319], [329, 304], [340, 284], [347, 262],
        [351, 241], [353, 218], [355, 195], [189, 188], [196, 172], [211, 165], [228, 165],
        [243, 171], [284, 168], [298, 161], [315, 161], [331, 167], [340, 181], [265, 188],
        [265, 205], [266, 221], [267, 238], [247, 246], [257, 249], [268, 252], [278, 249],
        [287, 246], [210, 195], [218, 187], [228, 187], [238, 194], [229, 195], [219, 196],
        [291, 192], [300, 184], [310, 184], [319, 190], [311, 192], [301, 193], [233, 281],
        [245, 274], [258, 272], [267, 274], [277, 271], [288, 273], [300, 277], [289, 284],
        [278, 287], [269, 289], [259, 288], [246, 285], [238, 279], [258, 278], [268, 279],
        [277, 278], [296, 278], [277, 278], [268, 279], [258, 279]],
}
PHOTOS = ("astronaut", "grace_hopper")


def photo_path(name: str) -> Path:
    """File of a source photo inside its installed package."""
    if name == "astronaut":
        spec = importlib.util.find_spec("skimage")
        folder = Path(list(spec.submodule_search_locations)[0]) if spec else None
        path = folder / "data" / "astronaut.png" if folder else None
    elif name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    else:
        raise ValueError(f"unknown photo {name!r}")
    if path is None or not path.is_file():
        raise FaceSourceError(f"the {name} photo is missing ({path}); install scikit-image "
                              f"and matplotlib")
    return path


def _photo(name: str) -> np.ndarray:
    """RGB uint8 pixels of a source photo."""
    from matplotlib.image import imread

    image = np.asarray(imread(photo_path(name)))
    if image.dtype != np.uint8:  # PNGs come back as float in [0, 1]
        image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return image[..., :3]


def photo_landmarks(name: str, detect: bool = False) -> np.ndarray:
    """68 landmarks of a source photo: stored, or detected again with dlib."""
    if not detect:
        return np.array(PHOTO_LANDMARKS[name], dtype=np.float64)
    lm = detect_landmarks(_photo(name))
    if lm is None:
        raise FaceSourceError(f"dlib found no face in the {name} photo")
    return lm


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre)."""
    return landmarks[EYE_R].mean(0), landmarks[EYE_L].mean(0)


def _align(landmarks: np.ndarray) -> np.ndarray:
    """2x3 similarity map putting the eye centres at their canvas positions."""
    left, right = eye_centres(landmarks)
    v = right - left
    scale = EYE_DISTANCE / np.hypot(*v)
    angle = -np.arctan2(v[1], v[0])
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    rot = np.array([[c, -s], [s, c]])
    mid = (left + right) / 2
    t = np.array(EYE_CENTER) - rot @ mid
    return np.concatenate([rot, t[:, None]], axis=1)


@dataclass
class Source:
    """A photo aligned into the head canvas."""

    name: str
    image: np.ndarray  # (CANVAS, CANVAS, 3) float32 in [0, 1]
    landmarks: np.ndarray  # (68, 2) in canvas px


@cache
def sources() -> tuple[Source, Source]:
    """Both photos, detected and aligned (cached per process)."""
    out = []
    for name in PHOTOS:
        photo = _photo(name)
        lm = photo_landmarks(name)
        m = _align(lm)
        inv = np.linalg.inv(m[:, :2])
        ys, xs = np.mgrid[0:CANVAS, 0:CANVAS]
        canvas_xy = np.stack([xs, ys], -1).astype(np.float64)
        src_xy = (canvas_xy - m[:, 2]) @ inv.T
        image = sample_image(photo.astype(np.float32) / 255.0, src_xy)
        out.append(Source(name, image.astype(np.float32), lm @ m[:, :2].T + m[:, 2]))
    return out[0], out[1]


def forehead_points(landmarks: np.ndarray, height: float = 0.55) -> np.ndarray:
    """Points above the brows (an arc ``height`` eye-distances high at the middle)."""
    brows = landmarks[17:27]
    left, right = eye_centres(landmarks)
    d = np.hypot(*(right - left))
    up = np.array([(right - left)[1], -(right - left)[0]]) / d  # perpendicular, pointing up
    up = up if up[1] < 0 else -up
    centre = brows.mean(0)
    pts = []
    for p in brows:
        lateral = abs((p - centre) @ ((right - left) / d)) / d
        pts.append(p + up * d * height * (1.0 - 0.45 * lateral ** 2))
    return np.array(pts)


def _border_points(n: int = 6) -> np.ndarray:
    """Fixed points along the canvas border (they do not move in a morph)."""
    s = CANVAS - 1
    ticks = np.linspace(0, s, n)
    pts = [(x, 0) for x in ticks] + [(x, s) for x in ticks]
    pts += [(0, y) for y in ticks[1:-1]] + [(s, y) for y in ticks[1:-1]]
    return np.array(pts, dtype=np.float64)


@dataclass(frozen=True)
class IdentitySpec:
    """How one identity is made."""

    alpha: float  # 0: astronaut ... 1: Grace Hopper
    mirror: bool = False
    face_width: float = 1.0  # jaw/cheek width factor
    eye_spacing: float = 1.0  # eye distance factor
    jaw: float = 1.0  # lower-jaw width factor (chin stays)
    nose: float = 1.0  # nose length factor
    mouth_width: float = 1.0
    face_length: float = 1.0  # chin height factor
    skin: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB gains on the face
    hair: tuple[int, int, int] = (90, 60, 40)
    background: tuple[int, int, int] = (200, 200, 205)  # top colour of the gradient
    clothes: tuple[int, int, int] = (40, 50, 80)
    hair_volume: float = 1.0  # hair cap size factor


# A dozen identities: the astronaut first, then eleven picked from 140 random morph/shape/
# colour combinations by farthest-point selection on dlib's face-recognition embedding (rest
# faces: every pair >= 0.4 apart; the tests check >= 0.3 on rendered frames). Morph fractions
# stay <= 0.62: closer to Grace Hopper, her spectacles' dark upper rim sits where dlib looks
# for the upper eyelid, and its eye aspect ratio no longer drops when the eyes shut.
IDENTITIES: tuple[IdentitySpec, ...] = (
    IdentitySpec(0.0, hair=(92, 64, 40), background=(196, 204, 214), clothes=(200, 90, 40)),
    IdentitySpec(0.62, mirror=True, face_width=0.9, jaw=1.1, nose=1.1, mouth_width=1.08,
                 skin=(0.82, 0.7, 0.6), hair_volume=0.9, hair=(15, 12, 12),
                 background=(60, 80, 130), clothes=(20, 25, 45)),
    IdentitySpec(0.25, face_width=1.1, eye_spacing=0.93, jaw=1.1, nose=0.92, face_length=1.06,
                 skin=(0.92, 0.85, 0.78), hair_volume=0.9, hair=(120, 80, 50),
                 background=(150, 170, 150), clothes=(120, 30, 40)),
    IdentitySpec(0.62, face_width=1.1, eye_spacing=1.07, jaw=0.9, nose=0.92, mouth_width=0.92,
                 face_length=0.94, skin=(0.92, 0.85, 0.78), hair=(180, 140, 80),
                 background=(210, 190, 170), clothes=(30, 80, 60)),
    IdentitySpec(0.25, mirror=True, face_width=1.1, eye_spacing=1.07, jaw=0.9, nose=1.1,
                 mouth_width=0.92, face_length=0.94, skin=(0.6, 0.48, 0.4), hair_volume=1.12,
                 hair=(200, 200, 195), background=(120, 120, 125), clothes=(230, 230, 225)),
    IdentitySpec(0.25, mirror=True, eye_spacing=0.93, jaw=0.9, nose=1.1, face_length=1.06,
                 skin=(0.7, 0.58, 0.5), hair_volume=0.9, hair=(180, 140, 80),
                 background=(170, 200, 220), clothes=(60, 60, 60)),
    IdentitySpec(0.0, mirror=True, eye_spacing=0.93, jaw=1.1, nose=1.1, face_length=0.94,
                 skin=(0.6, 0.48, 0.4), hair=(15, 12, 12), background=(225, 215, 190),
                 clothes=(90, 40, 100)),
    IdentitySpec(0.25, mirror=True, face_width=0.9, jaw=0.9, nose=0.92, mouth_width=0.92,
                 face_length=0.94, skin=(0.6, 0.48, 0.4), hair=(150, 60, 30),
                 background=(100, 140, 110), clothes=(210, 200, 160)),
    IdentitySpec(0.0, mirror=True, face_width=1.1, eye_spacing=0.93, mouth_width=0.92,
                 face_length=1.06, skin=(0.7, 0.58, 0.5), hair=(200, 200, 195),
                 background=(200, 170, 160), clothes=(40, 90, 160)),
    IdentitySpec(0.25, face_width=0.9, jaw=0.9, nose=1.1, mouth_width=1.08, face_length=0.94,
                 skin=(0.7, 0.58, 0.5), hair_volume=1.12, hair=(180, 140, 80),
                 background=(90, 90, 110), clothes=(160, 160, 170)),
    IdentitySpec(0.38, face_width=0.9, eye_spacing=0.93, jaw=0.9, mouth_width=0.92,
                 skin=(1.05, 0.98, 0.92), hair_volume=1.12, hair=(230, 210, 160),
                 background=(180, 215, 190), clothes=(130, 20, 30)),
    IdentitySpec(0.5, face_width=1.1, eye_spacing=0.93, nose=0.92, mouth_width=1.08,
                 face_length=0.94, skin=(0.92, 0.85, 0.78), hair=(92, 64, 40),
                 background=(235, 235, 240), clothes=(60, 110, 70)),
)


def identity_spec(index: int) -> IdentitySpec:
    """Spec of identity ``index``: the table, then procedural variations for further ones."""
    if index < len(IDENTITIES):
        return IDENTITIES[index]
    rng = np.random.default_rng([7, index])
    base = IDENTITIES[index % len(IDENTITIES)]
    return IdentitySpec(
        alpha=float(rng.uniform(0, 0.62)), mirror=bool(rng.integers(2)),
        face_width=float(rng.uniform(0.9, 1.1)), eye_spacing=float(rng.uniform(0.93, 1.07)),
        jaw=float(rng.uniform(0.88, 1.12)), nose=float(rng.uniform(0.9, 1.1)),
        mouth_width=float(rng.uniform(0.9, 1.1)), face_length=float(rng.uniform(0.93, 1.07)),
        skin=tuple(float(g) for g in rng.uniform(0.65, 1.05, 3)),
        hair=tuple(int(v) for v in rng.integers(10, 230, 3)),
        background=base.background, clothes=tuple(int(v) for v in rng.integers(20, 230, 3)))


@dataclass
class Identity:
    """A rendered rest face in the head canvas."""

    spec: IdentitySpec
    rgba: np.ndarray  # (CANVAS, CANVAS, 4) float32, premultiplied colour + alpha, [0, 1]
    landmarks: np.ndarray  # (68, 2) rest landmarks in canvas px (mouth shut with a slit)
    helpers: np.ndarray  # (V, 2) extra control points of the animation warp
    helper_mix: np.ndarray  # (V, 68): helper displacement = helper_mix @ landmark displacement
    skin_rgb: np.ndarray  # (3,) mean cheek colour in [0, 1]


def _shape_variation(lm: np.ndarray, spec: IdentitySpec) -> np.ndarray:
    """Apply the spec's shape factors to a landmark set (canvas px)."""
    out = lm.copy()
    left, right = eye_centres(lm)
    cx = (left[0] + right[0]) / 2
    eye_y = (left[1] + right[1]) / 2
    # face width: jaw line horizontally about the face midline
    out[JAW, 0] = cx + (out[JAW, 0] - cx) * spec.face_width
    # lower jaw width, growing towards the chin (the chin point stays)
    lower = np.array(JAW)
    weight = np.clip((lm[lower, 1] - eye_y) / (lm[8, 1] - eye_y), 0, 1) ** 1.5
    out[lower, 0] = cx + (out[lower, 0] - cx) * (1 + (spec.jaw - 1) * weight)
    # eye spacing: each eye and brow moves with its eye centre
    for eye, brow, centre in ((EYE_R, BROW_R, left), (EYE_L, BROW_L, right)):
        shift = (centre[0] - cx) * (spec.eye_spacing - 1)
        out[eye + brow, 0] += shift
    # nose length: nose tip points (30-35) move down
    nose_shift = (lm[33, 1] - lm[27, 1]) * (spec.nose - 1)
    out[30:36, 1] += nose_shift
    # mouth: width about its centre, moved down with the nose
    mouth = list(range(48, 68))
    mc = lm[mouth].mean(0)
    out[mouth, 0] = mc[0] + (out[mouth, 0] - mc[0]) * spec.mouth_width
    out[mouth, 1] += nose_shift * 0.8
    # face length: points below the eyes stretch vertically
    below = lm[:, 1] > eye_y + 5
    out[below, 1] = eye_y + (out[below, 1] - eye_y) * spec.face_length
    return out


def _neutral_mouth(lm: np.ndarray) -> np.ndarray:
    """Close the lips (inner lines ``MOUTH_SLIT`` apart) and level the corners, keeping the
    lips' thickness."""
    out = lm.copy()
    inner_mid = (lm[INNER_UP] + lm[INNER_LOW]) / 2
    corners_y = (lm[[48, 60], 1].mean() + lm[[54, 64], 1].mean()) / 2
    line_y = 0.5 * inner_mid[:, 1].mean() + 0.5 * corners_y
    # inner lines: a gentle arc through line_y
    out[INNER_UP, 1] = line_y - MOUTH_SLIT / 2
    out[INNER_LOW, 1] = line_y + MOUTH_SLIT / 2
    out[INNER_UP, 0] = inner_mid[:, 0]
    out[INNER_LOW, 0] = inner_mid[:, 0]
    for idx in (48, 54):
        out[idx, 1] = line_y + 0.5 * (lm[idx, 1] - line_y) * 0.3
    for idx in (60, 64):
        out[idx, 1] = line_y
    # lip thickness at each column, from the original (upper lip: outer above inner)
    up_thick = np.clip(lm[[61, 62, 63], 1] - lm[[50, 51, 52], 1], 0.05 * EYE_DISTANCE, None)
    low_thick = np.clip(lm[[57, 57, 57], 1] - lm[[66, 66, 66], 1], 0.08 * EYE_DISTANCE, None)
    out[[50, 51, 52], 1] = out[INNER_UP, 1] - up_thick
    out[[49, 53], 1] = line_y - 0.6 * up_thick[[0, 2]]
    low = [58, 57, 56]
    out[low, 1] = line_y + MOUTH_SLIT / 2 + low_thick * np.array([0.85, 1.0, 0.85])
    out[[59, 55], 1] = line_y + 0.6 * low_thick[0]
    return out


def _polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.draw import polygon

    mask = np.zeros(shape, np.float32)
    rr, cc = polygon(points[:, 1], points[:, 0], shape)
    mask[rr, cc] = 1.0
    return mask


def _hull(points: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    return points[ConvexHull(points).vertices]


def _feather(mask: np.ndarray, erode: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import binary_erosion, gaussian_filter

    if erode > 0:
        mask = binary_erosion(mask > 0.5, iterations=erode).astype(np.float32)
    return np.clip(gaussian_filter(mask, sigma), 0, 1)


def _noise(shape: tuple[int, int], sigma: tuple[float, float], rng: np.random.Generator
           ) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    n = gaussian_filter(rng.standard_normal(shape), sigma)
    return n / (np.abs(n).max() + 1e-9)


def make_identity(spec: IdentitySpec, seed: int = 0) -> Identity:
    """Render the rest face of ``spec`` (deterministic from ``spec`` and ``seed``)."""
    a, b = sources()
    la, lb = a.landmarks, b.landmarks
    img_a, img_b = a.image, b.image
    if spec.mirror:
        flip = np.array([CANVAS - 1.0, 0.0])

        def mirror(lm: np.ndarray) -> np.ndarray:
            out = lm[MIRROR].copy()
            out[:, 0] = flip[0] - out[:, 0]
            return out

        la, lb = mirror(la), mirror(lb)
        img_a, img_b = img_a[:, ::-1].copy(), img_b[:, ::-1].copy()
    target = (1 - spec.alpha) * la + spec.alpha * lb
    target = _neutral_mouth(_shape_variation(target, spec))
    border = _border_points()
    dst = np.concatenate([target, forehead_points(target), border])
    warped = []
    for lm, img in ((la, img_a), (lb, img_b)):
        src = np.concatenate([lm, forehead_points(lm), border])
        warped.append(tps_backward_warp(img, src, dst, (CANVAS, CANVAS)))
    face = (1 - spec.alpha) * warped[0] + spec.alpha * warped[1]
    return _compose(spec, face.astype(np.float32), target, seed)


def _compose(spec: IdentitySpec, face: np.ndarray, lm: np.ndarray, seed: int) -> Identity:
    """Mask the face, recolour it, and put it over a neck and a hair cap (RGBA canvas)."""
    rng = np.random.default_rng([seed, int(spec.alpha * 1000), int(spec.mirror)])
    shape = (CANVAS, CANVAS)
    forehead = forehead_points(lm, 0.62)
    outline = _hull(np.concatenate([lm[JAW], forehead]))
    face_mask = _feather(_polygon_mask(outline, shape), erode=2, sigma=1.6)

    # skin tone: per-channel gains on the face
    face = np.clip(face * np.array(spec.skin, np.float32), 0, 1)
    cheek_pts = (lm[[1, 2, 3, 31]].mean(0), lm[[15, 14, 13, 35]].mean(0))
    skin = np.mean([face[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].reshape(-1, 3).mean(0)
                    for x, y in cheek_pts], axis=0)

    # mouth slit: dark line between the inner lip lines
    slit = _polygon_mask(np.concatenate([lm[60:65], lm[[65, 66, 67]]]), shape)
    slit = _feather(slit, 0, 0.6)
    face = face * (1 - 0.9 * slit[..., None]) + 0.9 * slit[..., None] * np.array([0.2, 0.07, 0.07])

    # neck: a column under the jaw, darker than the face, with a shadow under the chin
    ys, xs = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    cx = float(lm[8, 0])
    jaw_w = float(lm[16, 0] - lm[0, 0])
    half = 0.27 * jaw_w
    top = float(lm[[4, 12], 1].mean())
    neck = (np.abs(xs - cx) < half + (ys - lm[8, 1]).clip(0) * 0.25) & (ys > top)
    neck = _feather(neck.astype(np.float32), 0, 1.5)
    shade = np.clip(1 - (ys - lm[8, 1]).clip(0) / 30.0, 0, 1)
    side = np.clip(np.abs(xs - cx) / (half + 1e-6), 0, 1.5)
    neck_rgb = skin * (0.92 - 0.3 * shade[..., None] - 0.12 * side[..., None] ** 2)

    # hair: a cap behind the head and a fringe over the top edge of the face
    hair_c = np.array(spec.hair, np.float32) / 255.0
    arc = forehead_points(lm, 0.42)
    arc_y = np.interp(xs, arc[:, 0], arc[:, 1])
    hx = cx
    hy = float(arc[:, 1].mean()) + 0.22 * jaw_w
    rx, ry = 0.62 * jaw_w * spec.hair_volume, 0.6 * jaw_w * spec.hair_volume
    ell = ((xs - hx) / rx) ** 2 + ((ys - hy) / ry) ** 2
    cap = (ell < 1.0) & (ys < lm[[2, 14], 1].mean())
    cap = _feather(cap.astype(np.float32), 0, 2.0)
    fringe = (ell < 1.0) & (ys < arc_y + 0.6 * (np.abs(xs - cx) / (0.5 * jaw_w)) ** 2 * 10)
    fringe = _feather(fringe.astype(np.float32), 0, 1.8)
    streaks = _noise(shape, (6.0, 1.2), rng)
    hair_rgb = np.clip(hair_c[None, None] * (1 + 0.25 * streaks[..., None])
                       * (1.05 - 0.25 * ((ys - (hy - ry)) / (2 * ry)).clip(0, 1))[..., None], 0, 1)

    # layers, back to front: hair cap, neck, face, fringe (colour premultiplied by alpha)
    rgb = hair_rgb * cap[..., None]
    alpha = cap.copy()
    for layer_rgb, layer_a in ((neck_rgb, neck), (face, face_mask), (hair_rgb, fringe)):
        rgb = layer_rgb * layer_a[..., None] + rgb * (1 - layer_a[..., None])
        alpha = layer_a + alpha * (1 - layer_a)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=-1).astype(np.float32)

    helpers, mix = _helper_points(lm)
    return Identity(spec=spec, rgba=rgba, landmarks=lm.astype(np.float64), helpers=helpers,
                    helper_mix=mix, skin_rgb=skin.astype(np.float32))


def _helper_points(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extra control points of the animation warp: fixed anchors (a ring around the face, four
    forehead points, the canvas border), with an all-zero mix.

    (Points above the upper lids that follow the brows instead of the lids were tried: the
    blinks then read worse for dlib, whose EAR on a shut eye rose from about 0.12 to 0.2.)
    """
    centre = lm[[27, 30, 8]].mean(0)
    radius = 1.35 * np.hypot(*(lm[16] - lm[0])) / 2
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = centre + radius * np.stack([np.cos(angles), 1.15 * np.sin(angles)], axis=1)
    fore = forehead_points(lm, 0.6)[[0, 3, 6, 9]]
    helpers = np.concatenate([ring, fore, _border_points(5)])
    return helpers, np.zeros((len(helpers), 68))


def backdrop(spec: IdentitySpec, height: int, width: int, head_offset: tuple[int, int],
             seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Static layers of a frame: background (H, W, 3) and the clothes (colour, alpha).

    The background is a vertical gradient from the identity's colour; the clothes are a
    shoulder shape with a V neckline below the head canvas' neck, drawn over the head.
    """
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    top = np.array(spec.background, np.float32) / 255.0
    bottom = top * 0.72
    g = (ys / max(height - 1, 1))[..., None]
    bg = top * (1 - g) + bottom * g
    # faint vignette
    r2 = ((xs - width / 2) / width) ** 2 + ((ys - height / 2) / height) ** 2
    bg = bg * (1 - 0.18 * r2[..., None])

    ox, oy = head_offset
    cx = ox + CANVAS / 2
    shoulder_y = oy + 0.84 * CANVAS  # where the shoulders meet the neck
    half = 0.5 * CANVAS  # half the shoulder width
    dx = np.abs(xs - cx) / half
    # shoulder line: flat by the neck, rounding down into the arms at |dx| = 1.3
    u = np.clip((dx - 0.25) / 1.05, 0, 1)
    line = shoulder_y + 0.45 * CANVAS * (1 - np.sqrt(1 - u ** 2))
    body = (ys > line) & (dx < 1.3)
    # round (crew) neckline
    neck_v = ((xs - cx) / (0.17 * CANVAS)) ** 2 + ((ys - shoulder_y) / (0.07 * CANVAS)) ** 2 < 1
    clothes = (body & ~neck_v).astype(np.float32)
    clothes = _feather(clothes, 0, 1.2)
    c = np.array(spec.clothes, np.float32) / 255.0
    shade = 1.0 - 0.25 * np.clip(dx - 0.6, 0, 1)
    rng = np.random.default_rng([seed, 99])
    texture = 1 + 0.04 * _noise((height, width), (2.0, 2.0), rng)
    clothes_rgb = np.clip(c * (shade * texture)[..., None], 0, 1)
    return bg.astype(np.float32), clothes_rgb.astype(np.float32), clothes.astype(np.float32)
