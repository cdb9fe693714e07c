"""Change detection (LEVIR-CD, WHU-CD, OSCD, DFC25 track 2) on mmseg, after open-cd's design:
bi-temporal inputs stacked on the channel axis, one shared backbone per date, a fusion neck and
an mmseg decode head, scored with mmseg's IoUMetric (mFscore/mIoU) per class."""
