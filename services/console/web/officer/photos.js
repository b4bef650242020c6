// A camera's photo made fit for a slow link before it waits in the outbox: at most 2048 pixels
// on its longest side, as a JPEG of quality 0.85 (a 12-megapixel photo of 4 MB becomes about
// 0.5 MB: a minute less of upload on 3G). Small photos are kept as they are. The browser draws
// it upright (its EXIF orientation applied); the server strips the location either way.
const MAX_SIDE = 2048
const QUALITY = 0.85
const KEEP_BYTES = 1_500_000

export async function shrink(file) {
  if (file.size <= KEEP_BYTES) return file
  try {
    const bitmap = await createImageBitmap(file)
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height))
    const canvas = document.createElement('canvas')
    canvas.width = Math.round(bitmap.width * scale)
    canvas.height = Math.round(bitmap.height * scale)
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height)
    bitmap.close()
    const blob = await new Promise((done) => canvas.toBlob(done, 'image/jpeg', QUALITY))
    if (!blob || blob.size >= file.size) return file
    return new File([blob], file.name.replace(/\.\w+$/, '') + '.jpg', { type: 'image/jpeg' })
  } catch {
    return file  // a photo the browser cannot draw goes as it is (the server checks it)
  }
}
